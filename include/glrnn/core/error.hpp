#pragma once
// Exceptions thrown by glrnn. The library never prints or exits: every failure is one of these,
// with a message that says what went wrong, where, and what was expected.

#include <stdexcept>  // std::runtime_error
#include <string>     // std::string

namespace glrnn {

/// Base of every glrnn error.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A file could not be opened, mapped or read.
class IoError : public Error {
 public:
  using Error::Error;
};

/// A file's bytes do not follow its format (safetensors header, JSON syntax, ...).
class FormatError : public Error {
 public:
  using Error::Error;
};

/// A tensor or buffer has a shape other than the one the configuration implies.
class ShapeError : public Error {
 public:
  using Error::Error;
};

/// A configuration is missing a key or holds an invalid or unsupported value.
class ConfigError : public Error {
 public:
  using Error::Error;
};

/// Input at run time is invalid (a token id outside the vocabulary, a bad position, ...).
class InputError : public Error {
 public:
  using Error::Error;
};

}  // namespace glrnn

/// Throws `ErrorType(message...)` unless `condition` holds. For checks at the boundary, not in hot
/// loops. Variadic so that a message expression may contain commas (`Shape{out, in}.str()`).
#define GLRNN_CHECK(condition, ErrorType, ...)     \
  do {                                              \
    if (!(condition)) throw ErrorType(__VA_ARGS__); \
  } while (0)
