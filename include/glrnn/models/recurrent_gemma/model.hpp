#pragma once
// RecurrentGemma (Griffin): the decoder stack with recurrent and local-attention blocks in the
// tiled block pattern, Gemma RMSNorms, GeGLU MLPs, a bf16-rounded embedding scale, the tied head
// and the logit soft cap (recurrentgemma.md §2).

#include <utility>  // std::move
#include <vector>   // std::vector

#include "glrnn/models/decoder_stack.hpp"
#include "glrnn/models/recurrent_gemma/config.hpp"
#include "glrnn/models/recurrent_gemma/weights.hpp"

namespace glrnn {

template <class T>
using RecurrentGemma = DecoderStack<T, RecurrentBlock<T>, LocalAttention<T>>;

/// Builds the model from a store's tensors (see weights.hpp), checking every shape against the
/// configuration.
template <class T, class Store>
RecurrentGemma<T> build_recurrent_gemma(const RecurrentGemmaConfig& c, Store& store) {
  namespace rg = recurrent_gemma;
  std::vector<typename RecurrentGemma<T>::Block> blocks;
  blocks.reserve(static_cast<std::size_t>(c.num_layers));
  for (std::int64_t l = 0; l < c.num_layers; ++l) {
    RmsNorm temporal_norm(c.norm(), rg::temporal_norm(store, c, l));
    RmsNorm channel_norm(c.norm(), rg::channel_norm(store, c, l));
    Mlp<T> mlp(c.mlp(), rg::mlp<T>(store, c, l));
    if (c.block_type(l) == GriffinBlockType::Recurrent) {
      blocks.emplace_back(ResidualBlock<T, RecurrentBlock<T>>(
          std::move(temporal_norm), RecurrentBlock<T>(c.recurrent_block(), rg::recurrent_block<T>(store, c, l)),
          std::move(channel_norm), std::move(mlp)));
    } else {
      blocks.emplace_back(ResidualBlock<T, LocalAttention<T>>(
          std::move(temporal_norm), LocalAttention<T>(c.attention(), rg::attention<T>(store, c, l)),
          std::move(channel_norm), std::move(mlp)));
    }
  }
  const TensorView<const T> head = rg::output_head<T>(store, c);
  return RecurrentGemma<T>(Embedding<T>(rg::embedding<T>(store, c), c.embedding_scale()), std::move(blocks),
                           RmsNorm(c.norm(), rg::final_norm(store, c)),
                           Linear<T>(c.hidden_size, c.vocab_size, {head, {}}, "output head"), c.logits_soft_cap);
}

}  // namespace glrnn
