#pragma once
// A whole file mapped read-only into memory, so multi-gigabyte checkpoints are paged in on demand
// instead of being copied.

#include <fcntl.h>     // open, O_RDONLY, O_CLOEXEC, O_NONBLOCK
#include <sys/mman.h>  // mmap, munmap
#include <sys/stat.h>  // fstat, struct stat, S_ISREG, S_ISDIR
#include <unistd.h>    // close

#include <cerrno>   // errno, EISDIR
#include <cstddef>  // std::byte, std::size_t
#include <cstring>  // std::strerror
#include <string>   // std::string
#include <utility>  // std::exchange, std::move

#include "glrnn/core/error.hpp"

namespace glrnn {

/// RAII read-only mapping (PROT_READ, MAP_PRIVATE) of a whole file. Move-only.
/// An empty file is valid: nothing is mapped and data() is nullptr.
class MappedFile {
 public:
  /// Throws IoError naming the path and the system's reason when the file cannot be opened,
  /// is not a regular file, or cannot be mapped.
  explicit MappedFile(const std::string& path) : path_(path) {
    // O_NONBLOCK so that a FIFO given by mistake fails below instead of hanging in open();
    // it has no effect on regular files.
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) throw IoError(describe_errno("cannot open", errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      const int err = errno;
      ::close(fd);
      throw IoError(describe_errno("cannot stat", err));
    }
    if (!S_ISREG(st.st_mode)) {
      ::close(fd);
      if (S_ISDIR(st.st_mode)) throw IoError(describe_errno("cannot map", EISDIR));
      throw IoError("cannot map '" + path_ + "': not a regular file");
    }
    size_ = static_cast<std::size_t>(st.st_size);
    if (size_ > 0) {
      void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
      if (p == MAP_FAILED) {
        const int err = errno;
        ::close(fd);
        throw IoError(describe_errno("cannot map", err));
      }
      data_ = static_cast<const std::byte*>(p);
    }
    // The mapping keeps its own reference to the file; the descriptor is no longer needed.
    ::close(fd);
  }

  ~MappedFile() { unmap(); }

  MappedFile(MappedFile&& other) noexcept
      : path_(std::move(other.path_)),
        data_(std::exchange(other.data_, nullptr)),
        size_(std::exchange(other.size_, 0)) {}

  MappedFile& operator=(MappedFile&& other) noexcept {
    if (this != &other) {
      unmap();
      path_ = std::move(other.path_);
      data_ = std::exchange(other.data_, nullptr);
      size_ = std::exchange(other.size_, 0);
    }
    return *this;
  }

  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::byte* data() const { return data_; }
  std::size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  std::string describe_errno(const char* action, int err) const {
    return std::string(action) + " '" + path_ + "': " + std::strerror(err);
  }

  void unmap() noexcept {
    if (data_ != nullptr) ::munmap(const_cast<std::byte*>(data_), size_);
    data_ = nullptr;
    size_ = 0;
  }

  std::string path_;
  const std::byte* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace glrnn
