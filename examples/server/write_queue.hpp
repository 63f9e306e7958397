#pragma once
// A thread that runs a cache tier's writes in order, behind a queue bounded in bytes: the model's
// thread hands a write over and never waits for a disk or a network. A write that finds the
// queue full is refused (its caller counts it): a cache may lose an entry, it must not stall the
// model or grow without bound.

#include <condition_variable>  // std::condition_variable
#include <cstddef>             // std::size_t
#include <deque>               // std::deque
#include <functional>          // std::function
#include <mutex>               // std::mutex, std::lock_guard, std::unique_lock
#include <thread>              // std::thread
#include <utility>             // std::move

namespace glrnn::server {

class WriteQueue {
 public:
  explicit WriteQueue(std::size_t max_bytes) : max_bytes_(max_bytes), thread_([this] { loop(); }) {}
  /// Writes still queued are not run: their `dropped` callbacks are (finish() first to run them).
  ~WriteQueue() {
    std::deque<Write> left;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
      left.swap(queue_);
    }
    wake_.notify_all();
    thread_.join();
    for (Write& w : left)
      if (w.dropped) w.dropped();
  }
  WriteQueue(const WriteQueue&) = delete;
  WriteQueue& operator=(const WriteQueue&) = delete;

  /// Queues `write`, which holds `bytes` until it has run; false (and neither callback runs)
  /// when that would pass the bound or the queue is stopping.
  bool push(std::size_t bytes, std::function<void()> write, std::function<void()> dropped = {}) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopping_ || queued_bytes_ + bytes > max_bytes_) return false;
      queued_bytes_ += bytes;
      queue_.push_back({bytes, std::move(write), std::move(dropped)});
    }
    wake_.notify_all();
    return true;
  }

  /// Waits until every write queued so far has run.
  void finish() {
    std::unique_lock<std::mutex> lock(mutex_);
    idle_.wait(lock, [&] { return queue_.empty() && !running_; });
  }

 private:
  struct Write {
    std::size_t bytes;
    std::function<void()> write, dropped;
  };

  void loop() {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      Write w = std::move(queue_.front());
      queue_.pop_front();
      running_ = true;
      lock.unlock();
      w.write();
      w.write = nullptr;  // what it captured (a state of tens of MB) goes now
      lock.lock();
      running_ = false;
      queued_bytes_ -= w.bytes;
      if (queue_.empty()) idle_.notify_all();
    }
  }

  const std::size_t max_bytes_;
  std::mutex mutex_;
  std::condition_variable wake_, idle_;
  std::deque<Write> queue_;
  std::size_t queued_bytes_ = 0;  // of the queued writes and the one running
  bool running_ = false, stopping_ = false;
  std::thread thread_;  // last: it starts once the rest is built
};

}  // namespace glrnn::server
