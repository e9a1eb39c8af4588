// Runtime results (Status, StatusOr) in the (value, message) form many tests check: the value, or
// an empty one, with the message in *error ("" when ok). A test that expects a failure can then
// look for what the message says, and one that expects success can print it.
#pragma once

#include <string>
#include <utility>

#include "base/status.h"

// In namespace ingot, so that calls find them by the argument types (StatusOr, Status).
namespace ingot {

template <typename T>
T take(StatusOr<T> result, std::string* error) {
  *error = result.ok() ? std::string() : result.message();
  return result.ok() ? std::move(*result) : T{};
}

inline bool succeeded(const Status& status, std::string* error) {
  *error = status.message();
  return status.ok();
}

}  // namespace ingot
