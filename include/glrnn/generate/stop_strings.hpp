#pragma once
// Stop strings over streamed text: text is released as soon as it cannot be the start of a stop
// string, and everything from the first stop string on is dropped, so a client never sees a stop
// string, not even half of one.

#include <algorithm>  // std::min
#include <string>     // std::string
#include <utility>    // std::move
#include <vector>     // std::vector

namespace glrnn {

class StopStrings {
 public:
  explicit StopStrings(std::vector<std::string> stops) : stops_(std::move(stops)) {}

  /// Appends text; returns the part that can be shown now.
  std::string push(const std::string& text) {
    if (stopped_) return {};
    held_ += text;
    std::size_t first = std::string::npos;
    for (const std::string& stop : stops_) first = std::min(first, held_.find(stop));
    if (first != std::string::npos) {
      stopped_ = true;
      std::string out = held_.substr(0, first);
      held_.clear();
      return out;
    }
    // Keep the longest tail that a stop string starts with; it starts where a stop string's
    // first byte is, so the released part ends on a character boundary.
    std::size_t keep = 0;
    for (const std::string& stop : stops_)
      for (std::size_t n = std::min(stop.size() - 1, held_.size()); n > keep; --n)
        if (held_.compare(held_.size() - n, n, stop, 0, n) == 0) {
          keep = n;
          break;
        }
    std::string out = held_.substr(0, held_.size() - keep);
    held_.erase(0, held_.size() - keep);
    return out;
  }

  /// The text held back at the end of the reply.
  std::string flush() {
    std::string out = std::move(held_);
    held_.clear();
    return stopped_ ? std::string() : out;
  }

  /// A stop string was found; nothing more is shown.
  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stops_;  // none empty (the request parser refuses those)
  std::string held_;
  bool stopped_ = false;
};

}  // namespace glrnn
