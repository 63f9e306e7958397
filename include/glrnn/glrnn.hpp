#pragma once
// glrnn: gated linear RNN language models on the CPU. Umbrella header: includes the public API.

#include "glrnn/version.hpp"

#include "glrnn/core/buffer.hpp"
#include "glrnn/core/dtype.hpp"
#include "glrnn/core/error.hpp"
#include "glrnn/core/kernels.hpp"
#include "glrnn/core/math.hpp"
#include "glrnn/core/tensor.hpp"
#include "glrnn/core/threading.hpp"

#include "glrnn/io/json_config.hpp"
#include "glrnn/io/mapped_file.hpp"
#include "glrnn/io/safetensors.hpp"
#include "glrnn/io/weight_store.hpp"

#include "glrnn/layers/conv1d.hpp"
#include "glrnn/layers/embedding.hpp"
#include "glrnn/layers/hgrn2.hpp"
#include "glrnn/layers/linear.hpp"
#include "glrnn/layers/local_attention.hpp"
#include "glrnn/layers/mlp.hpp"
#include "glrnn/layers/recurrent_block.hpp"
#include "glrnn/layers/residual_block.hpp"
#include "glrnn/layers/rglru.hpp"
#include "glrnn/layers/rmsnorm.hpp"
#include "glrnn/layers/rope.hpp"

#include "glrnn/models/decoder_stack.hpp"
#include "glrnn/models/hgrn2/config.hpp"
#include "glrnn/models/hgrn2/model.hpp"
#include "glrnn/models/hgrn2/weights.hpp"
#include "glrnn/models/model.hpp"
#include "glrnn/models/recurrent_gemma/config.hpp"
#include "glrnn/models/recurrent_gemma/model.hpp"
#include "glrnn/models/recurrent_gemma/weights.hpp"
#include "glrnn/models/registry.hpp"

#include "glrnn/sampling/sampler.hpp"

#include "glrnn/tokenizer/bpe.hpp"
#include "glrnn/tokenizer/chat_template.hpp"
#include "glrnn/tokenizer/stream_decoder.hpp"
#include "glrnn/tokenizer/tokenizer.hpp"
#include "glrnn/tokenizer/tokenizer_json.hpp"
#include "glrnn/tokenizer/utf8.hpp"

#include "glrnn/generate/generate.hpp"
#include "glrnn/generate/perplexity.hpp"
#include "glrnn/generate/session.hpp"
#include "glrnn/generate/stats.hpp"
