#pragma once
// Continuous batching with a state cache. One thread owns the model and loops:
//   1. admit queued jobs into free slots, each starting from the longest cached prefix of its
//      prompt (at most all but the last token, whose logits are needed);
//   2. run up to `prefill_chunk` prompt tokens, oldest sequence first, so that a long prompt
//      delays the running streams by one chunk per step and never freezes them;
//   3. let every decoding Sequence choose its next token, publish it, and advance them all with
//      one batched step of the Stepper.
// The scheduler keeps admission, slots and the cache's keys; the Sequence decides tokens, text and
// stops; the Stepper runs the model.
// A sequence's state is cached when its prompt has been run (one token short of its end, so
// that the same prompt again still has a token to run for its logits) and again when its reply
// has ended, keyed by exactly the ids the next request will have: the prompt followed by the
// reply as that request renders it (Job::reply_tail). Usually the generated ids are a prefix of
// those and only the turn's closing tokens are run; when they are not (a stop string cut the
// text, the reply does not tokenize back to its own ids) the key is built from the prompt's
// cached state. Either way a later turn restores the state a server reading the whole history
// would have computed.
// Besides memory, the cache may have a directory (--cache-dir) and a tier shared with other
// replicas (Redis): both are read by a fetching thread while the running sequences decode, so a
// request with a longer prefix there waits in a fetching stage, up to a deadline. The shared tier
// gets the reply states of chats (the next turn looks for them at its turn ends) and the prompt
// states of completions; a chat's end reaches its client once its reply state is written there
// (at most kWriteHold after its close), so that the next turn finds it on any replica.

#include <algorithm>           // std::min, std::equal, std::find
#include <chrono>              // std::chrono::steady_clock
#include <condition_variable>  // std::condition_variable
#include <cstdint>             // std::int32_t, std::int64_t
#include <deque>               // std::deque
#include <exception>           // std::exception
#include <functional>          // std::function
#include <memory>              // std::shared_ptr, std::unique_ptr
#include <mutex>               // std::mutex, std::lock_guard, std::unique_lock
#include <optional>            // std::optional
#include <string>              // std::string
#include <thread>              // std::thread
#include <utility>             // std::move
#include <vector>              // std::vector

#include <glrnn/core/threading.hpp>
#include <glrnn/generate/sequence.hpp>
#include <glrnn/generate/stepper.hpp>
#include <glrnn/generate/state_cache.hpp>
#include <glrnn/models/model.hpp>
#include <glrnn/sampling/logprobs.hpp>
#include <glrnn/sampling/sampler.hpp>

#include "job.hpp"
#include "shared_tier.hpp"
#include "write_queue.hpp"

namespace glrnn::server {

struct SchedulerOptions {
  std::int64_t parallel = 8;         // sequences decoded together (a request with n choices takes n)
  std::int64_t max_queue = 64;       // requests waiting for slots; more get 503
  std::int64_t prefill_chunk = 128;  // prompt tokens run between two decode steps
  int threads = 0;                   // 0: all cores
  bool cache = true;
  StateCacheOptions cache_options;
  // A state file is read by the fetching thread while the running sequences decode; a read that
  // takes longer than this lets its request go on from what memory had.
  std::chrono::milliseconds fetch_timeout{2000};
  // The tier shared with other replicas, made for the cache's entries; none when unset.
  std::function<std::unique_ptr<SharedTier>(const StateCacheEntries&)> shared_tier;
};

/// Counters for /metrics, copied out after every step.
struct SchedulerMetrics {
  std::int64_t requests = 0, rejected = 0;
  std::int64_t prompt_tokens = 0, cached_tokens = 0;  // prompts received, and the part restored
  std::int64_t prefilled_tokens = 0;                  // tokens run in chunks (prompts and reply closes)
  std::int64_t closing_tokens = 0;                    // of those, run after replies to cache them
  std::int64_t generated_tokens = 0;
  double prefill_seconds = 0.0, decode_seconds = 0.0;
  std::int64_t queued = 0, running = 0, fetching = 0;
  std::int64_t fetch_timeouts = 0;  // requests that went on without the state they waited for
  StateCacheStats cache;
  TierMetrics memory, disk;
  bool disk_tier = false;             // --cache-dir
  std::optional<TierMetrics> shared;  // with a shared tier
  bool shared_up = false;
};

class Scheduler {
 public:
  /// stop_tokens: ids that end a reply (the model's end-of-sequence ids, <end_of_turn>).
  Scheduler(Model model, const Tokenizer& tokenizer, SchedulerOptions options, std::vector<std::int32_t> stop_tokens)
      : model_(std::move(model)), tokenizer_(&tokenizer), options_(std::move(options)), stop_tokens_(std::move(stop_tokens)),
        stepper_(model_, options_.parallel, options_.prefill_chunk) {
    if (options_.cache) {
      StateCacheOptions cache_options = options_.cache_options;
      cache_options.write_behind = true;  // files are written by disk_writer_, away from the model's thread
      cache_.emplace(model_, cache_options);
    }
    reads_files_ = cache_ && !options_.cache_options.directory.empty();
    counters_.disk_tier = reads_files_;
    if (cache_ && options_.shared_tier) shared_tier_ = options_.shared_tier(cache_->entries());
    publish_metrics();
    if (reads_files_ || shared_tier_) fetcher_ = std::thread([this] { fetch(); });
    thread_ = std::thread([this] { run(); });
  }
  ~Scheduler() { stop(); }
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  /// Queues a job; false when the queue is full or the server is stopping.
  bool submit(std::shared_ptr<Job> job) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopping_ || static_cast<std::int64_t>(queue_.size()) >= options_.max_queue) {
        ++shared_.rejected;
        return false;
      }
      queue_.push_back(std::move(job));
      ++shared_.requests;
      shared_.queued = static_cast<std::int64_t>(queue_.size());
    }
    wake_.notify_one();
    return true;
  }

  /// Ends every queued and running job (they fail with 503), writes the cache to its directory
  /// and stops the thread. Idempotent.
  void stop() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_one();
    fetch_wake_.notify_one();
    if (thread_.joinable()) thread_.join();
    if (fetcher_.joinable()) fetcher_.join();
  }

  /// The counters of the last step, and the fetching thread's and the shared tier's as they are
  /// now (they move while the model's thread sleeps).
  SchedulerMetrics metrics() const {
    SchedulerMetrics m;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      m = shared_;
      m.disk.fetch = disk_fetch_;
    }
    if (shared_tier_) {
      m.shared = shared_tier_->metrics();
      m.shared_up = shared_tier_->up();
    }
    return m;
  }

 private:
  enum class Phase { Prefill, Decode, Close };

  /// One slot: a prompt being run, a choice being decoded (by a glrnn::Sequence, which then
  /// holds the state), or a reply's close being run.
  struct Slot {
    std::shared_ptr<Job> job;
    std::int64_t choice = 0;
    Phase phase = Phase::Prefill;
    State state;                        // while prefilling and closing
    std::optional<std::size_t> end_hold;  // its job's end waits for this choice's reply state (Job::hold_end)
    std::optional<Sequence> sequence;   // while decoding
    std::vector<std::int32_t> tokens;   // every token run into the state, in order: its cache key
    std::vector<std::int32_t> pending;  // to run in chunks before the next phase
    std::size_t pending_done = 0;
    Eigen::VectorXf logits;             // [V] after the last token run
    std::string reply;                  // the text the client received
    std::int64_t reserved = 0;          // slots still held for the job's other choices
    bool done = false;
  };

  void run() {
    set_num_threads(options_.threads);  // OpenMP's thread count is per thread: set it in this one
    for (;;) {
      std::vector<std::shared_ptr<Job>> admitted;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        const auto news = [&] { return stopping_ || !queue_.empty() || !running_.empty() || fetched_ > 0; };
        if (fetching_.empty()) wake_.wait(lock, news);
        else wake_.wait_for(lock, std::chrono::milliseconds(20), news);  // a fetch's deadline may pass
        if (stopping_) break;
        take_admissible(admitted);
      }
      try {
        index_written_files();
        for (std::shared_ptr<Job>& job : admitted) start(std::move(job));
        take_fetched();
        prefill_some();
        decode_step();
      } catch (const std::exception& e) {
        // What one sequence does fails that sequence alone (isolated() below); what is left is
        // the batched step itself, which ends the requests in flight, not the server: the
        // states of a half-run step cannot be trusted.
        const ApiError error(500, "internal_error", std::string("generation failed: ") + e.what());
        fail_running(error);
        for (std::shared_ptr<Job>& job : admitted)
          if (job) job->fail(error);  // admitted but not started when it happened
      }
      running_.erase(std::remove_if(running_.begin(), running_.end(), [](const auto& s) { return s->done; }), running_.end());
      if (cache_) write_evicted_states();
      publish_metrics();
    }
    shut_down();
  }

  /// States that left memory for the cache directory are written by the disk writer's thread; a
  /// state that finds its queue full is lost, as a cache may lose one.
  void write_evicted_states() {
    for (StateCache::DiskWrite& evicted : cache_->take_disk_writes()) {
      auto write = std::make_shared<StateCache::DiskWrite>(std::move(evicted));
      const std::size_t bytes = write->state.bytes();
      const bool queued = disk_writer_.push(bytes, [this, write] {
        const std::uintmax_t size = write->write(cache_->entries());  // the entries are immutable
        write->state = State();
        std::lock_guard<std::mutex> lock(mutex_);
        written_files_.push_back({write, size});
      });
      if (!queued) ++counters_.disk.dropped_writes;
    }
  }

  /// The files the disk writer has written join the directory's index (on this thread, which
  /// owns the cache), before the requests of this step look them up.
  void index_written_files() {
    std::vector<WrittenFile> written;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      written.swap(written_files_);
    }
    for (const WrittenFile& file : written) cache_->written(*file.write, file.bytes);
  }

  std::int64_t free_slots() const {
    return options_.parallel - static_cast<std::int64_t>(running_.size() + fetching_.size()) - reserved_;
  }

  /// A job whose prompt extends a reply that is still being closed and cached waits for it, so
  /// the next turn of a chat never misses its own history.
  bool waits_for_close(const Job& job) const {
    const std::vector<std::int32_t>& prompt = job.prompt();
    for (const auto& s : running_) {
      if (s->phase != Phase::Close) continue;
      // The key it will be cached under: what it has run and what it has still to run.
      const auto rest = s->pending.begin() + static_cast<std::ptrdiff_t>(s->pending_done);
      const std::size_t length = s->tokens.size() + static_cast<std::size_t>(s->pending.end() - rest);
      if (length <= prompt.size() && std::equal(s->tokens.begin(), s->tokens.end(), prompt.begin()) &&
          std::equal(rest, s->pending.end(), prompt.begin() + static_cast<std::ptrdiff_t>(s->tokens.size())))
        return true;
    }
    return false;
  }

  /// First come, first served: a job that does not fit holds back those behind it. Called with
  /// the lock held.
  void take_admissible(std::vector<std::shared_ptr<Job>>& admitted) {
    for (auto it = queue_.begin(); it != queue_.end();) {
      Job& job = **it;
      if (job.cancelled()) {
        job.finish();
        it = queue_.erase(it);
        continue;
      }
      if (job.params().n > free_slots()) break;
      if (waits_for_close(job)) {
        ++it;
        continue;
      }
      reserved_ += job.params().n;
      admitted.push_back(std::move(*it));
      it = queue_.erase(it);
    }
    shared_.queued = static_cast<std::int64_t>(queue_.size());
  }

  void start(std::shared_ptr<Job> job) {
    const std::vector<std::int32_t>& prompt = job->prompt();
    reserved_ -= job->params().n;
    if (prompt.empty()) {  // the HTTP layer refuses these; never index before the start
      job->fail(ApiError(400, "invalid_value", "the prompt has no tokens", "prompt"));
      return;
    }
    auto seq = std::make_unique<Slot>();
    seq->job = job;
    seq->reserved = job->params().n - 1;
    reserved_ += seq->reserved;
    std::size_t restored = 0;
    FetchRequest request;
    const bool ok = isolated(*seq, [&] {
      // Memory now; a longer prefix on disk or in the shared tier is fetched by the fetching
      // thread while the others decode.
      restored = cache_ ? cache_->restore(prompt, prompt.size() - 1, seq->state, /*read_disk=*/false) : 0;
      if (restored == 0) seq->state = model_.make_state();
      from_prefix(*seq, restored);
      if (cache_) ++(restored > 0 ? counters_.memory.hits : counters_.memory.misses);
      if (restored > 0) counters_.memory.read_bytes += static_cast<std::int64_t>(cache_->entries().bytes(restored));
      if (reads_files_) request.read = cache_->disk_read(prompt, prompt.size() - 1, restored);
      if (shared_tier_) request.shared_lengths = shared_lengths(*job, restored);
    });
    if (!ok) return;
    if (!request.read && request.shared_lengths.empty()) return run_sequence(std::move(seq), restored);
    request.tokens = prompt;
    request.result = std::make_shared<FetchResult>();
    fetching_.push_back({std::move(seq), request.read, restored, std::chrono::steady_clock::now() + options_.fetch_timeout,
                         request.result});
    {
      std::lock_guard<std::mutex> lock(mutex_);
      fetch_queue_.push_back(std::move(request));
    }
    fetch_wake_.notify_one();
  }

  /// The prefixes of a job's prompt longer than `restored` whose states the shared tier may
  /// hold, longest first: a chat's turn ends, a completion's prompt but its last token (see
  /// shares_prompt_state).
  std::vector<std::size_t> shared_lengths(const Job& job, std::size_t restored) const {
    const std::size_t last = job.prompt().size() - 1;
    std::vector<std::size_t> lengths;
    if (shares_prompt_state(job)) {
      if (last > restored) lengths.push_back(last);
      return lengths;
    }
    for (auto it = job.turn_ends().rbegin(); it != job.turn_ends().rend(); ++it)
      if (*it > restored && *it <= last) lengths.push_back(*it);
    return lengths;
  }

  /// A chat shares its reply states (what its next turn restores); a completion, whose next
  /// request continues text whose tokens the server cannot foresee, shares its prompt's state
  /// (what the same prompt again restores).
  static bool shares_prompt_state(const Job& job) { return !job.reply_tail(); }

  /// Caches the state after `key`: in memory (and on disk once it leaves memory), and in the
  /// shared tier when it is one the tier keeps; a choice holding its job's end passes the hold
  /// on to the write, which it waits for at most kWriteHold.
  void cache_state(Slot& seq, const std::vector<std::int32_t>& key, const State& state, bool for_shared_tier) {
    cache_->insert(key, state);
    if (!shared_tier_ || !for_shared_tier) return;
    std::function<void()> done = [] {};
    if (seq.end_hold) {
      seq.job->move_end_hold(*seq.end_hold, std::chrono::steady_clock::now() + kWriteHold);
      done = [job = seq.job, id = *seq.end_hold] { job->release_end(id); };
      seq.end_hold.reset();
    }
    shared_tier_->write(key, state.clone(), std::move(done));
  }

  /// A choice that held its job's end writes nothing to the shared tier after all.
  static void release_end(Slot& seq) {
    if (seq.end_hold) seq.job->release_end(*seq.end_hold);
    seq.end_hold.reset();
  }

  /// The sequence's prompt goes on after its first `length` tokens, whose state it holds.
  void from_prefix(Slot& seq, std::size_t length) {
    const std::vector<std::int32_t>& prompt = seq.job->prompt();
    seq.tokens.assign(prompt.begin(), prompt.begin() + static_cast<std::ptrdiff_t>(length));
    seq.pending.assign(prompt.begin() + static_cast<std::ptrdiff_t>(length), prompt.end());
    seq.pending_done = 0;
  }

  void run_sequence(std::unique_ptr<Slot> seq, std::size_t restored) {
    seq->logits = Eigen::VectorXf::Zero(model_.vocab_size());
    seq->job->admitted(static_cast<std::int64_t>(restored));
    counters_.prompt_tokens += static_cast<std::int64_t>(seq->job->prompt().size());
    counters_.cached_tokens += static_cast<std::int64_t>(restored);
    running_.push_back(std::move(seq));
  }

  /// Sequences whose state file has been read (or whose read took too long) start running.
  void take_fetched() {
    const auto now = std::chrono::steady_clock::now();
    for (auto it = fetching_.begin(); it != fetching_.end();) {
      std::optional<State> state;
      bool done = false;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        done = it->result->done;
        if (done) state = std::move(it->result->state), --fetched_;
        else if (now >= it->deadline) it->result->abandoned = true;  // the fetching thread drops it
      }
      if (!done && now < it->deadline) {
        ++it;
        continue;
      }
      std::size_t restored = it->restored;
      Slot& seq = *it->seq;
      if (!done) {
        ++counters_.fetch_timeouts;
      } else {
        const FetchResult& result = *it->result;  // done: the fetching thread has let go of it
        if (result.disk_rejected) {
          cache_->reject(*it->read);
          ++counters_.disk.misses;
        }
        if (state) {
          if (result.from_disk) {
            cache_->accept(*it->read, seq.job->prompt(), state->clone(), restored);
            ++counters_.disk.hits;
            counters_.disk.read_bytes += static_cast<std::int64_t>(it->read->bytes);
          } else {  // the shared tier's: now in memory too
            const std::vector<std::int32_t>& prompt = seq.job->prompt();
            cache_->insert(std::vector<std::int32_t>(prompt.begin(), prompt.begin() + static_cast<std::ptrdiff_t>(result.length)),
                           *state);
          }
          seq.state = std::move(*state);
          restored = result.length;
          from_prefix(seq, restored);
        }
      }
      run_sequence(std::move(it->seq), restored);
      it = fetching_.erase(it);
    }
  }

  /// The fetching thread: reads state files for the scheduler, one at a time.
  void fetch() {
    for (;;) {
      FetchRequest request;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        fetch_wake_.wait(lock, [&] { return stopping_ || !fetch_queue_.empty(); });
        if (stopping_) return;
        request = std::move(fetch_queue_.front());
        fetch_queue_.pop_front();
      }
      // The shared tier first where it may hold a longer prefix than the file, then the file.
      std::optional<State> state;
      std::size_t length = 0;
      bool from_disk = false, disk_rejected = false;
      const std::size_t file_length = request.read ? request.read->length : 0;
      std::vector<std::size_t>& lengths = request.shared_lengths;
      lengths.erase(std::remove_if(lengths.begin(), lengths.end(), [&](std::size_t l) { return l <= file_length; }), lengths.end());
      if (!lengths.empty()) {
        if (std::optional<SharedTier::Found> found = shared_tier_->fetch(request.tokens, lengths)) {
          state = std::move(found->state);
          length = found->length;
        }
      }
      std::optional<double> disk_seconds;
      if (!state && request.read) {
        const auto t0 = std::chrono::steady_clock::now();
        state = request.read->read(cache_->entries(), request.tokens);  // the entries are immutable
        disk_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        from_disk = true;
        disk_rejected = !state;
        length = file_length;
      }
      {
        std::lock_guard<std::mutex> lock(mutex_);
        if (disk_seconds) disk_fetch_.add(*disk_seconds);
        request.result->done = true;
        if (request.result->abandoned) continue;  // its request went on without it: nobody takes it
        request.result->state = std::move(state);
        request.result->length = length;
        request.result->from_disk = from_disk;
        request.result->disk_rejected = disk_rejected;
        ++fetched_;
      }
      wake_.notify_one();
    }
  }

  /// Runs one sequence's own work (its prompt, sampling, text, stop strings, cache writes); a
  /// failure there fails its request alone, the other sequences go on. False when it failed.
  template <class Work>
  bool isolated(Slot& seq, Work&& work) {
    try {
      work();
      return true;
    } catch (const std::exception& e) {
      // A reply that has ended is the client's already: only its caching is lost.
      if (seq.phase != Phase::Close) seq.job->fail(ApiError(500, "internal_error", std::string("generation failed: ") + e.what()));
      release(seq);
      release_end(seq);
      seq.done = true;
      return false;
    }
  }

  /// The slots held for a job's other choices return to the pool (they started, or never will).
  void release(Slot& seq) {
    reserved_ -= seq.reserved;
    seq.reserved = 0;
  }

  void prefill_some() {
    const auto t0 = std::chrono::steady_clock::now();
    std::int64_t budget = options_.prefill_chunk;
    std::vector<std::unique_ptr<Slot>> spawned;  // the other choices of prompts done now
    for (auto& seq : running_) {
      if (budget == 0) break;
      if (seq->phase == Phase::Decode || seq->done) continue;
      if (seq->phase == Phase::Prefill && (seq->job->cancelled() || stopping())) {
        release(*seq);
        seq->job->finish();
        seq->done = true;
        continue;
      }
      const auto n = std::min<std::int64_t>(budget, static_cast<std::int64_t>(seq->pending.size() - seq->pending_done));
      const bool last = seq->pending_done + static_cast<std::size_t>(n) == seq->pending.size();
      budget -= n;
      isolated(*seq, [&] { prefill_chunk(*seq, n, last, spawned); });
    }
    for (auto& s : spawned) running_.push_back(std::move(s));
    counters_.prefill_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }

  /// Runs the next n pending tokens of one sequence: a reply's close (cached at its end), a piece
  /// of a prompt, or a prompt's last piece (cached one token short, then its choices begin).
  void prefill_chunk(Slot& seq, std::int64_t n, bool last, std::vector<std::unique_ptr<Slot>>& spawned) {
    if (seq.phase == Phase::Close) {
      run_pending(seq, n, Logits::None);
      counters_.closing_tokens += n;
      if (!last) return;
      cache_state(seq, seq.tokens, seq.state, /*for_shared_tier=*/!shares_prompt_state(*seq.job));
      seq.done = true;
      return;
    }
    if (!last) {
      run_pending(seq, n, Logits::None);
      return;
    }
    // The prompt's state is cached one token short of its end: a request with the same prompt
    // (a retry, another sample) then runs one token instead of its whole last turn, and the
    // last token is run anyway for its logits.
    run_pending(seq, n - 1, Logits::None);
    if (cache_) cache_state(seq, seq.tokens, seq.state, /*for_shared_tier=*/shares_prompt_state(*seq.job));
    run_pending(seq, 1, Logits::Last);
    for (std::int64_t c = 1; c < seq.job->params().n; ++c) {
      auto choice = std::make_unique<Slot>();
      choice->job = seq.job;
      choice->state = seq.state.clone();
      choice->tokens = seq.tokens;
      choice->logits = seq.logits;
      begin_decoding(*choice, c);
      spawned.push_back(std::move(choice));
    }
    release(seq);
    begin_decoding(seq, 0);
  }

  /// Runs the next n pending tokens of a sequence in one forward pass.
  void run_pending(Slot& seq, std::int64_t n, Logits mode) {
    if (n == 0) return;
    const std::int32_t* first = seq.pending.data() + seq.pending_done;
    stepper_.prefill(first, n, seq.state, mode, seq.logits);
    seq.tokens.insert(seq.tokens.end(), first, first + n);
    seq.pending_done += static_cast<std::size_t>(n);
    counters_.prefilled_tokens += n;
  }

  void begin_decoding(Slot& seq, std::int64_t choice) {
    const GenerationParams& params = seq.job->params();
    SamplerParams sampling = params.sampling;
    sampling.seed += static_cast<std::uint64_t>(choice);
    SequenceParams rules;
    rules.max_new_tokens = params.max_tokens;
    if (!params.ignore_eos) rules.stop_tokens = stop_tokens_;
    rules.stop_strings = params.stop;
    rules.grammar = params.grammar;
    rules.max_context = model_.info().max_context;  // a reply also ends where a hybrid's cache does
    if (params.grammar && !vocabulary_) vocabulary_ = TokenVocabulary::from_tokenizer(*tokenizer_);
    seq.choice = choice;
    seq.phase = Phase::Decode;
    seq.sequence.emplace(std::move(seq.state), Sampler(sampling, model_.vocab_size()), std::move(rules),
                         seq.job->prompt(), tokenizer_, vocabulary_);
    seq.pending.clear();
    seq.pending_done = 0;
  }

  bool is_stop_token(std::int32_t token) const {
    return std::find(stop_tokens_.begin(), stop_tokens_.end(), token) != stop_tokens_.end();
  }

  void decode_step() {
    const auto t0 = std::chrono::steady_clock::now();
    step_batch_.clear();
    step_sequences_.clear();
    for (auto& seq : running_) {
      if (seq->phase != Phase::Decode || seq->done) continue;
      Job& job = *seq->job;
      if (job.cancelled() || job.ended() || stopping()) {  // ended: another choice of it failed
        end_choice(*seq, -1, /*keep=*/false);
        continue;
      }
      isolated(*seq, [&] { emit_token(*seq); });
    }
    if (!step_batch_.empty()) {
      const RowMatrixXf& rows = stepper_.decode(step_batch_);
      for (std::size_t r = 0; r < step_sequences_.size(); ++r)
        step_sequences_[r]->logits = rows.row(static_cast<Eigen::Index>(r)).transpose();
      counters_.decode_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
  }

  /// Samples a decoding sequence's next token and publishes its text; the token joins this
  /// step's batch unless it ended the choice.
  void emit_token(Slot& seq) {
    Job& job = *seq.job;
    const GenerationParams& params = job.params();
    const SequenceEvent event = seq.sequence->next(seq.logits);
    ChoiceDelta delta;
    delta.index = seq.choice;
    delta.text = event.text;
    delta.finish_reason = finish_reason_name(event.finish);
    if (params.logprobs >= 0 && (params.ignore_eos || !is_stop_token(event.token))) {
      // Over the ids that have text, as the Sequence samples: a model's padding rows are none.
      const auto with_text = seq.logits.head(std::min<Eigen::Index>(seq.logits.size(), tokenizer_->vocab_size()));
      delta.tokens.push_back({event.token, token_logprob(with_text, event.token), top_logprobs(with_text, params.logprobs)});
    }
    ++counters_.generated_tokens;
    seq.reply += delta.text;
    job.publish(std::move(delta));
    if (seq.sequence->finished()) {
      end_choice(seq, event.token, /*keep=*/true);
      return;
    }
    step_batch_.push_back(&*seq.sequence);
    step_sequences_.push_back(&seq);
    seq.tokens.push_back(event.token);
  }

  /// A choice has its last token (not run). With `keep`, the state is brought to the key the
  /// next request will have and cached (phase Close); otherwise the slot is freed.
  void end_choice(Slot& seq, std::int32_t last, bool keep) {
    Job& job = *seq.job;
    if (keep && cache_ && shared_tier_ && !shares_prompt_state(job))
      seq.end_hold = job.hold_end(std::chrono::steady_clock::now() + kCloseHold);
    if (--job.choices_left == 0) job.finish();
    seq.done = true;
    if (seq.sequence) {
      seq.state = std::move(seq.sequence->state());
      seq.sequence.reset();
    }
    if (!keep || !cache_) return;
    cache_reply(seq, last);
    if (seq.done) release_end(seq);  // cached (the hold went with the write) or not at all; else a close runs
  }

  /// Caches a choice's state under the key the next request will have (see end_choice), now or
  /// after a close (phase Close).
  void cache_reply(Slot& seq, std::int32_t last) {
    Job& job = *seq.job;
    std::vector<std::int32_t> key;
    if (job.reply_tail()) {
      key = job.prompt();
      for (std::int32_t id : job.reply_tail()(seq.reply)) key.push_back(id);
    } else {
      key = seq.tokens;  // completions: the text continues after the reply's tokens, a stop token left out
      if (!is_stop_token(last) || job.params().ignore_eos) key.push_back(last);
    }
    const bool extends = key.size() >= seq.tokens.size() && std::equal(seq.tokens.begin(), seq.tokens.end(), key.begin());
    if (!extends) {
      if (cache_->contains(key)) return;
      State restored;
      const std::size_t cached = cache_->restore(key, key.size(), restored, /*read_disk=*/false);
      // Without the prompt's own state (kept one token short) this would re-read the history:
      // the next request does that if it comes; here the work stays bounded by the reply.
      if (cached + 1 < job.prompt().size()) return;
      seq.state = std::move(restored);
      seq.tokens.assign(key.begin(), key.begin() + static_cast<std::ptrdiff_t>(cached));
    }
    seq.pending.assign(key.begin() + static_cast<std::ptrdiff_t>(seq.tokens.size()), key.end());
    seq.pending_done = 0;
    if (seq.pending.empty()) {
      cache_state(seq, seq.tokens, seq.state, /*for_shared_tier=*/!shares_prompt_state(job));
      return;
    }
    seq.phase = Phase::Close;
    seq.done = false;
  }

  bool stopping() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return stopping_;
  }

  void publish_metrics() {
    std::lock_guard<std::mutex> lock(mutex_);
    const std::int64_t requests = shared_.requests, rejected = shared_.rejected, queued = shared_.queued;
    shared_ = counters_;
    shared_.requests = requests;
    shared_.rejected = rejected;
    shared_.queued = queued;
    shared_.running = static_cast<std::int64_t>(running_.size());
    shared_.fetching = static_cast<std::int64_t>(fetching_.size());
    if (cache_) {
      const StateCacheStats& stats = cache_->stats();
      shared_.cache = stats;
      shared_.disk.skipped = stats.disk_skipped;
      shared_.disk.writes = stats.disk_writes;
      shared_.disk.errors = stats.disk_write_errors;
    }
  }

  /// Ends every running sequence; their jobs fail with `error` (one that had ended stays as it was).
  void fail_running(const ApiError& error) {
    for (auto& seq : running_) {
      seq->job->fail(error);
      release_end(*seq);
      seq->done = true;
    }
    for (Fetch& f : fetching_) f.seq->job->fail(error);
    fetching_.clear();
    reserved_ = 0;
  }

  void shut_down() {
    const ApiError stopping(503, "server_shutting_down", "the server is shutting down");
    std::deque<std::shared_ptr<Job>> queued;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      queued.swap(queue_);
    }
    for (auto& job : queued) job->fail(stopping);
    for (Fetch& f : fetching_) f.seq->job->fail(stopping);
    fetching_.clear();
    // Replies that have ended but are not cached yet are a few tokens from it: finish them, so
    // the last turn of every conversation is in the directory for the next start.
    for (auto& seq : running_) {
      if (seq->phase == Phase::Close) continue;
      seq->job->fail(stopping);
      seq->done = true;
    }
    reserved_ = 0;
    try {
      for (;;) {
        running_.erase(std::remove_if(running_.begin(), running_.end(), [](const auto& s) { return s->done; }), running_.end());
        if (running_.empty()) break;
        prefill_some();
      }
    } catch (const std::exception&) {
      for (auto& seq : running_) release_end(*seq);
      running_.clear();  // what was cached stays; the rest is lost, as without the cache
    }
    if (cache_) {
      write_evicted_states();
      disk_writer_.finish();
      index_written_files();
      cache_->flush();
    }
    publish_metrics();
  }

  Model model_;
  const Tokenizer* tokenizer_;
  SchedulerOptions options_;
  std::vector<std::int32_t> stop_tokens_;
  Stepper stepper_;
  std::optional<StateCache> cache_;
  std::unique_ptr<SharedTier> shared_tier_;  // after cache_, whose entries it uses: it goes first
  std::shared_ptr<const TokenVocabulary> vocabulary_;  // built at the first request with a grammar
  bool reads_files_ = false;  // a disk tier, read by the fetching thread

  // How long a chat's end may wait for its reply state: its close (a few tokens on the model's
  // thread, however busy: this bounds a fault, not the work), then its write to the shared tier.
  // A write of tens of MB to a Redis on the same network takes tens of ms; past kWriteHold the
  // client gets its end anyway (a stalled Redis must not stall replies), and its next turn may
  // miss on another replica.
  static constexpr std::chrono::seconds kCloseHold{30};
  static constexpr std::chrono::milliseconds kWriteHold{1000};

  // A state being fetched for a sequence (see start and take_fetched).
  struct FetchResult {  // guarded by mutex_
    bool done = false, abandoned = false;
    std::optional<State> state;
    std::size_t length = 0;      // of the prefix it is the state of
    bool from_disk = false;      // else the shared tier's
    bool disk_rejected = false;  // the file was read and found unusable
  };
  struct FetchRequest {
    std::optional<StateCache::DiskRead> read;  // a longer prefix's file
    std::vector<std::size_t> shared_lengths;   // prefixes to ask the shared tier for, longest first
    std::vector<std::int32_t> tokens;
    std::shared_ptr<FetchResult> result;
  };
  struct Fetch {
    std::unique_ptr<Slot> seq;  // ready to run from the prefix memory had
    std::optional<StateCache::DiskRead> read;
    std::size_t restored;
    std::chrono::steady_clock::time_point deadline;
    std::shared_ptr<FetchResult> result;
  };

  // The scheduler thread's own.
  std::vector<std::unique_ptr<Slot>> running_;  // in admission order
  std::vector<Fetch> fetching_;                     // admitted, waiting for a state file
  std::int64_t reserved_ = 0;                       // slots promised to admitted jobs' later choices
  SchedulerMetrics counters_;
  std::vector<Sequence*> step_batch_;  // this step's decoding sequences ...
  std::vector<Slot*> step_sequences_;  // ... and their slots

  mutable std::mutex mutex_;  // guards what follows
  std::condition_variable wake_;
  std::deque<std::shared_ptr<Job>> queue_;
  std::deque<FetchRequest> fetch_queue_;
  std::condition_variable fetch_wake_;
  std::int64_t fetched_ = 0;  // reads done and not yet taken
  LatencyHistogram disk_fetch_;  // the fetching thread's file reads
  struct WrittenFile {
    std::shared_ptr<StateCache::DiskWrite> write;
    std::uintmax_t bytes;  // 0: it could not be written
  };
  std::vector<WrittenFile> written_files_;  // by the disk writer, not yet indexed
  bool stopping_ = false;
  SchedulerMetrics shared_;
  std::thread thread_, fetcher_;

  // States leaving memory for --cache-dir, written here. Last: it stops first, before what its
  // writes use. The bound is memory the cache no longer counts: a few states of a large model.
  static constexpr std::size_t kDiskQueueBytes = std::size_t{512} << 20;
  WriteQueue disk_writer_{kDiskQueueBytes};
};

}  // namespace glrnn::server
