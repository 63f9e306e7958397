#pragma once
// RecurrentGemma (Griffin): the decoder stack with recurrent and local-attention blocks in the
// tiled block pattern, Gemma RMSNorms, GeGLU MLPs, a bf16-rounded embedding scale, the tied head
// and the logit soft cap (docs/recurrent_gemma.md §2), and its entry in the family table.

#include <string>   // std::string
#include <utility>  // std::move
#include <vector>   // std::vector

#include "glrnn/layers/residual_block.hpp"
#include "glrnn/models/decoder_stack.hpp"
#include "glrnn/models/family.hpp"
#include "glrnn/models/recurrent_gemma/config.hpp"
#include "glrnn/models/recurrent_gemma/weights.hpp"

namespace glrnn {

using RecurrentGemma = DecoderStack<RmsNorm, LinearHead, ResidualBlock<RmsNorm, RecurrentBlock, Mlp>,
                                    ResidualBlock<RmsNorm, Attention, Mlp>>;

/// Builds the model from its tensors, checking every shape against the configuration.
inline RecurrentGemma build_recurrent_gemma(const RecurrentGemmaConfig& c, TensorReader& w) {
  namespace rg = recurrent_gemma;
  std::vector<RecurrentGemma::Block> blocks;
  blocks.reserve(static_cast<std::size_t>(c.num_layers));
  for (std::int64_t l = 0; l < c.num_layers; ++l) {
    RmsNorm temporal_norm(c.norm(), rg::temporal_norm(w, c, l));
    RmsNorm channel_norm(c.norm(), rg::channel_norm(w, c, l));
    Mlp mlp(c.mlp(), rg::mlp(w, c, l));
    if (c.block_type(l) == GriffinBlockType::Recurrent) {
      blocks.emplace_back(ResidualBlock<RmsNorm, RecurrentBlock, Mlp>(
          c.hidden_size, std::move(temporal_norm), RecurrentBlock(c.recurrent_block(), rg::recurrent_block(w, c, l)),
          std::move(channel_norm), std::move(mlp)));
    } else {
      blocks.emplace_back(ResidualBlock<RmsNorm, Attention, Mlp>(
          c.hidden_size, std::move(temporal_norm), Attention(c.attention(), rg::attention(w, c, l)),
          std::move(channel_norm), std::move(mlp)));
    }
  }
  const WeightMatrix head = rg::output_head(w, c);
  return RecurrentGemma(Embedding(rg::embedding(w, c), c.embedding_scale()), std::move(blocks),
                        RmsNorm(c.norm(), rg::final_norm(w, c)),
                        LinearHead(Linear(c.hidden_size, c.vocab_size, {head, {}}, "output head"), c.logits_soft_cap));
}

struct RecurrentGemmaFamily {
  static constexpr const char* kName = "recurrent_gemma";
  static std::vector<std::string> model_types() { return {"recurrent_gemma"}; }
  using Config = RecurrentGemmaConfig;

  static Config parse(const JsonConfig& json, const LoadOptions& options) {
    Config c = Config::from_json(json);
    c.rope_bf16_frequencies = options.rope_bf16_frequencies;
    return c;
  }
  static ModelSummary summary(const Config& c) {
    return {c.vocab_size, c.hidden_size, c.num_layers, c.bos_token_id, c.eos_token_id, c.state_bytes()};
  }
  static RecurrentGemma build(const Config& c, TensorReader& w) { return build_recurrent_gemma(c, w); }
};

}  // namespace glrnn
