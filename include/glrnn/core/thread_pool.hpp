#pragma once
// The threads of glrnn's parallel loops in a build without OpenMP (Apple's clang has none;
// GLRNN_OPENMP=OFF). As OpenMP keeps a team per thread that starts parallel work, every thread
// that calls into glrnn gets workers of its own, started on its first parallel loop and kept until
// it exits: several threads sharing a model each run their loops on their own workers, and no
// loop waits for another thread's. Between loops a worker spins briefly before it sleeps, because
// decode runs hundreds of short loops per token and waking a sleeping thread costs several
// microseconds each time (docs/architecture.md §6).

#include <algorithm>           // std::max
#include <atomic>              // std::atomic
#include <condition_variable>  // std::condition_variable
#include <cstdint>             // std::uint64_t
#include <exception>           // std::exception_ptr, std::current_exception, std::rethrow_exception
#include <memory>              // std::unique_ptr
#include <mutex>               // std::mutex, std::lock_guard, std::unique_lock
#include <thread>              // std::thread
#include <vector>              // std::vector

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>  // _mm_pause
#endif

namespace glrnn::detail {

/// Tells the core that this is a spin-wait loop (lets a sibling hyperthread run; saves power).
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__) || defined(__arm__)
  __asm__ __volatile__("yield");
#endif
}

class ThreadPool {
 public:
  ThreadPool() = default;
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;
  ~ThreadPool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    for (auto& worker : workers_) worker->thread.join();
  }

  /// Runs task(t) for every t in [0, threads), t = 0 on the calling thread and the others on
  /// this pool's workers, and returns when all have returned. The first exception a task
  /// throws is rethrown here, after every task has finished.
  template <class Task>
  void run(int threads, Task& task) {
    threads = std::max(1, threads);
    while (static_cast<int>(workers_.size()) < threads - 1)
      workers_.push_back(std::make_unique<Worker>(*this, static_cast<int>(workers_.size()) + 1));
    call_ = [](void* t, int index) { (*static_cast<Task*>(t))(index); };
    task_ = &task;
    error_ = nullptr;
    pending_.store(threads - 1, std::memory_order_relaxed);
    ++job_;
    for (int w = 0; w < threads - 1; ++w) workers_[static_cast<std::size_t>(w)]->ticket.store(job_, std::memory_order_release);
    if (threads > 1) {
      { std::lock_guard<std::mutex> lock(mutex_); }  // a worker between its check and its wait sees the ticket
      wake_.notify_all();
    }
    call(0);
    for (int spin = 0; pending_.load(std::memory_order_acquire) != 0; ++spin) {
      if (spin < kSpins) {
        cpu_relax();
        continue;
      }
      std::unique_lock<std::mutex> lock(mutex_);
      done_.wait(lock, [&] { return pending_.load(std::memory_order_acquire) == 0; });
    }
    if (error_) std::rethrow_exception(error_);
  }

 private:
  /// About 100 microseconds of pause instructions: longer than the gap between two loops of a
  /// decode step, far shorter than a token.
  static constexpr int kSpins = 1 << 12;

  struct Worker {
    Worker(ThreadPool& pool, int index) : thread([&pool, this, index] { pool.work(*this, index); }) {}
    std::atomic<std::uint64_t> ticket{0};  // the job this worker is to run next
    std::thread thread;                    // last: starts once the ticket exists
  };

  void call(int index) {
    try {
      call_(task_, index);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!error_) error_ = std::current_exception();
    }
  }

  void work(Worker& self, int index) {
    std::uint64_t done = 0;
    for (;;) {
      std::uint64_t ticket = self.ticket.load(std::memory_order_acquire);
      for (int spin = 0; ticket == done && spin < kSpins; ++spin) {
        cpu_relax();
        ticket = self.ticket.load(std::memory_order_acquire);
      }
      if (ticket == done) {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return stopping_ || self.ticket.load(std::memory_order_acquire) != done; });
        if (stopping_) return;
        ticket = self.ticket.load(std::memory_order_acquire);
      }
      done = ticket;
      call(index);
      if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        { std::lock_guard<std::mutex> lock(mutex_); }  // the caller between its check and its wait sees it
        done_.notify_one();
      }
    }
  }

  // The job, written by the owning thread before it hands out tickets (release) and read by each
  // worker after it takes its ticket (acquire); the owner waits for every worker before the next.
  void (*call_)(void*, int) = nullptr;
  void* task_ = nullptr;
  std::uint64_t job_ = 0;
  std::exception_ptr error_;
  std::atomic<int> pending_{0};

  std::mutex mutex_;
  std::condition_variable wake_, done_;
  bool stopping_ = false;
  std::vector<std::unique_ptr<Worker>> workers_;
};

/// The calling thread's pool (its workers end when it does).
inline ThreadPool& this_thread_pool() {
  thread_local ThreadPool pool;
  return pool;
}

}  // namespace glrnn::detail
