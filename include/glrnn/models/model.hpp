#pragma once
// Model and State: the one type-erased seam of the library, crossed once per call. A Model is
// immutable after loading and can be shared by threads; each sequence has its own State.

#include <cstddef>      // std::size_t
#include <cstdint>      // std::int32_t, std::int64_t, std::uint64_t
#include <functional>   // std::function
#include <map>          // std::map
#include <memory>       // std::shared_ptr, std::unique_ptr
#include <mutex>        // std::mutex, std::lock_guard
#include <string>       // std::string
#include <utility>      // std::move
#include <vector>       // std::vector

#include "glrnn/core/buffer.hpp"
#include "glrnn/models/decoder_stack.hpp"

namespace glrnn {

/// What a caller needs to know about a loaded model.
struct ModelInfo {
  std::string family;      // "recurrent_gemma"
  std::string path;        // where it was loaded from
  std::string weights;     // how the matrices are stored: a recipe's name ("bf16", "q4"), or "mixed"
  double bits_per_weight = 0;  // over every matrix, scales included
  std::int64_t vocab_size = 0;
  std::int64_t hidden_size = 0;
  std::int64_t num_layers = 0;
  std::int32_t bos_token_id = -1;
  std::int32_t eos_token_id = -1;
  std::vector<std::int32_t> stop_token_ids;  // eos_token_id plus generation_config.json's eos ids
  std::uint64_t fingerprint = 0;  // identifies the model a saved state belongs to (see load_model)
  std::size_t state_bytes = 0;    // one sequence's state at position 0
  std::size_t state_bytes_per_position = 0;  // what each position adds (a hybrid's full attention)
  std::int64_t max_context = 0;   // the most positions a sequence may reach; 0: no limit

  /// Bytes of one sequence's state once `position` positions have run.
  std::size_t state_bytes_at(std::int64_t position) const {
    return state_bytes + state_bytes_per_position * static_cast<std::size_t>(position);
  }
};

/// Called with each named float buffer of a state.
using StateVisitor = std::function<void(const std::string& name, float* data, std::size_t count)>;

class State;

namespace detail {
struct StateConcept {
  virtual ~StateConcept() = default;
  virtual std::unique_ptr<StateConcept> clone() const = 0;
  virtual std::int64_t position() const = 0;
  virtual std::size_t bytes() const = 0;
  virtual void reset() = 0;
  virtual void set_position(std::int64_t position) = 0;
  virtual void reserve(std::int64_t positions) = 0;
  virtual void visit(const StateVisitor& f) = 0;
  const void* owner = nullptr;  // the model implementation that made it
};

struct ModelConcept {
  virtual ~ModelConcept() = default;
  virtual std::unique_ptr<StateConcept> make_state() const = 0;
  virtual std::size_t state_bytes() const = 0;
  virtual std::size_t scratch_bytes(std::int64_t max_tokens) const = 0;
  virtual void forward(const std::int32_t* tokens, std::int64_t n, StateConcept& state, Scratch& scratch, Logits mode,
                       MatOut logits) const = 0;
  virtual void forward_batch(const std::int32_t* tokens, std::int64_t batch, State* const* states, Scratch& scratch,
                             MatOut logits) const = 0;
  ModelInfo info;
};

template <class Net>
struct StateImpl final : StateConcept {
  typename Net::State state;
  explicit StateImpl(typename Net::State s, const void* model) : state(std::move(s)) { owner = model; }
  std::unique_ptr<StateConcept> clone() const override {
    return std::make_unique<StateImpl>(state.clone(), owner);
  }
  std::int64_t position() const override { return state.position; }
  std::size_t bytes() const override { return state.bytes(); }
  void reset() override { state.reset(); }
  void set_position(std::int64_t position) override { state.set_position(position); }
  void reserve(std::int64_t positions) override { state.reserve(positions); }
  void visit(const StateVisitor& f) override {
    state.visit_blocks([&](const char* name, float* data, Eigen::Index count, std::size_t block) {
      f("layers." + std::to_string(block) + "." + name, data, static_cast<std::size_t>(count));
    });
  }
};

template <class Net>
struct ModelImpl final : ModelConcept {
  std::shared_ptr<const void> weights;  // what the views inside `net` point into
  Net net;
  ModelImpl(ModelInfo i, std::shared_ptr<const void> w, Net n) : weights(std::move(w)), net(std::move(n)) {
    info = std::move(i);
  }
  std::unique_ptr<StateConcept> make_state() const override {
    return std::make_unique<StateImpl<Net>>(net.make_state(), this);
  }
  std::size_t state_bytes() const override { return net.state_bytes(); }
  /// The dry run costs a pass over the layers' element-wise work: done once per chunk size.
  std::size_t scratch_bytes(std::int64_t max_tokens) const override {
    const std::lock_guard<std::mutex> lock(scratch_sizes_mutex);
    const auto known = scratch_sizes.find(max_tokens);
    if (known != scratch_sizes.end()) return known->second;
    return scratch_sizes[max_tokens] = net.scratch_bytes(max_tokens);
  }
  void forward(const std::int32_t* tokens, std::int64_t n, StateConcept& state, Scratch& scratch, Logits mode,
               MatOut logits) const override {
    GLRNN_CHECK(state.owner == this, InputError, "this state was made by another model");
    net.forward(tokens, n, static_cast<StateImpl<Net>&>(state).state, scratch, mode, logits);
  }
  void forward_batch(const std::int32_t* tokens, std::int64_t batch, State* const* states, Scratch& scratch,
                     MatOut logits) const override;

  mutable std::mutex scratch_sizes_mutex;
  mutable std::map<std::int64_t, std::size_t> scratch_sizes;
};
}  // namespace detail

/// One sequence's state: recurrences, conv histories, attention rings and the next position; fixed
/// in size, except a hybrid's full-attention caches, which grow with the position up to the
/// model's maximum context. Move-only; copy explicitly with clone() (it can be tens of megabytes).
class State {
 public:
  State() = default;
  bool valid() const { return impl_ != nullptr; }
  std::int64_t position() const { return impl_->position(); }
  std::size_t bytes() const { return impl_->bytes(); }
  void reset() { impl_->reset(); }
  State clone() const { return State(impl_->clone()); }
  /// Every buffer, in a fixed order, named "layers.<i>.<buffer>" (saving, loading, checksums).
  void visit(const StateVisitor& f) { impl_->visit(f); }
  /// Sets the next position (restoring a saved state); the buffers must match it.
  void set_position(std::int64_t position) { impl_->set_position(position); }
  /// Makes room for `positions` positions in a hybrid's full-attention caches, which otherwise grow
  /// as the sequence does (docs/hybrid_attention.md): running up to there then allocates nothing.
  /// A no-op for every other state. Throws InputError past the model's maximum context.
  void reserve(std::int64_t positions) { impl_->reserve(positions); }

 private:
  friend class Model;
  template <class Net>
  friend struct detail::ModelImpl;
  explicit State(std::unique_ptr<detail::StateConcept> impl) : impl_(std::move(impl)) {}
  std::unique_ptr<detail::StateConcept> impl_;
};

template <class Net>
void detail::ModelImpl<Net>::forward_batch(const std::int32_t* tokens, std::int64_t batch, State* const* states,
                                           Scratch& scratch, MatOut logits) const {
  for (std::int64_t b = 0; b < batch; ++b)
    GLRNN_CHECK(states[b] != nullptr && states[b]->impl_ && states[b]->impl_->owner == this, InputError,
                "state " + std::to_string(b) + " of the batch is empty or was made by another model");
  net.forward_batch(
      tokens, batch,
      [&](Eigen::Index b) -> typename Net::State& { return static_cast<StateImpl<Net>&>(*states[b]->impl_).state; },
      scratch, logits);
}

/// A loaded model (see load_model). Cheap to copy: copies share the immutable weights.
class Model {
 public:
  /// Wraps any network with the DecoderStack interface; `weights` keeps alive what its views
  /// point into (a WeightStore for loaded checkpoints, any owner for a hand-built stack).
  template <class Net>
  Model(ModelInfo info, std::shared_ptr<const void> weights, Net net)
      : impl_(std::make_shared<detail::ModelImpl<Net>>(std::move(info), std::move(weights), std::move(net))) {}

  const ModelInfo& info() const { return impl_->info; }
  std::int64_t vocab_size() const { return impl_->info.vocab_size; }

  /// A fresh state at position 0, allocated once; only a hybrid's full-attention caches grow.
  State make_state() const { return State(impl_->make_state()); }
  /// Bytes of one state at position 0, from the configuration (nothing is allocated).
  std::size_t state_bytes() const { return impl_->state_bytes(); }
  /// Temporaries for chunks of up to max_tokens positions (longer inputs are split), or for
  /// batches of up to max_tokens sequences.
  Scratch make_scratch(std::int64_t max_tokens) const {
    GLRNN_CHECK(max_tokens > 0, InputError, "max_tokens must be positive");
    return Scratch(impl_->scratch_bytes(max_tokens), max_tokens);
  }

  /// Runs tokens[0..n) from state.position() on; see DecoderStack::forward for `mode` and `logits`.
  void forward(const std::int32_t* tokens, std::int64_t n, State& state, Scratch& scratch, Logits mode,
               MatOut logits) const {
    GLRNN_CHECK(state.valid(), InputError, "empty state");
    impl_->forward(tokens, n, *state.impl_, scratch, mode, logits);
  }

  /// One token for each of B sequences (states[b] gets tokens[b]); writes row b of logits [B, V].
  /// Every weight is read once for the whole batch. See DecoderStack::forward_batch.
  void forward_batch(const std::int32_t* tokens, std::int64_t batch, State* const* states, Scratch& scratch,
                     MatOut logits) const {
    impl_->forward_batch(tokens, batch, states, scratch, logits);
  }

 private:
  std::shared_ptr<const detail::ModelConcept> impl_;
};

}  // namespace glrnn
