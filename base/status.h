// Status values for user errors; INGOT_ASSERT for broken internal invariants. The base of every
// Ingot library (ir, frontend, passes, codegen, runtime, tools): one error type from the compiler
// to the runtime's C API, which maps codes, never message text.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace ingot {

// What kind of error: what a caller may act on (the C API maps these to its codes). The message
// says what is wrong and where, for people.
enum class StatusCode {
  ok = 0,
  invalid_argument,  // bad input: a file, a model, an option, a value (the default)
  io,                // a file cannot be read or written
  context_full,      // the tokens do not fit in the context (a session's KV cache)
  unsupported,       // valid, but this build or this CPU cannot do it
  internal,          // out of memory, or a bug
};

// A user-facing error travels as a Status: ok, or a code and a message that says what is wrong
// and where.
class [[nodiscard]] Status {
 public:
  Status() = default;
  static Status Ok() { return Status(); }
  static Status Error(std::string message) { return Status(StatusCode::invalid_argument, std::move(message)); }
  static Status Error(StatusCode code, std::string message) { return Status(code, std::move(message)); }

  bool ok() const { return !message_.has_value(); }
  StatusCode code() const { return ok() ? StatusCode::ok : code_; }
  const std::string& message() const {
    static const std::string kEmpty;
    return message_ ? *message_ : kEmpty;
  }
  // Prefixes the message with context ("file.gguf: ..."); keeps the code; no-op when ok.
  Status with_context(const std::string& context) const {
    if (ok()) return *this;
    return Status(code_, context + ": " + *message_);
  }

 private:
  Status(StatusCode code, std::string message)
      : code_(code == StatusCode::ok ? StatusCode::internal : code), message_(std::move(message)) {}
  StatusCode code_ = StatusCode::ok;
  std::optional<std::string> message_;
};

// A value or the Status that says why there is none.
template <typename T>
class [[nodiscard]] StatusOr {
 public:
  StatusOr(T value) : v_(std::move(value)) {}
  StatusOr(Status status) : v_(std::move(status)) {
    if (std::get<Status>(v_).ok()) std::get<Status>(v_) = Status::Error("internal: StatusOr built from an ok Status");
  }
  bool ok() const { return std::holds_alternative<T>(v_); }
  StatusCode code() const { return ok() ? StatusCode::ok : std::get<Status>(v_).code(); }
  Status status() const { return ok() ? Status::Ok() : std::get<Status>(v_); }
  const std::string& message() const { return std::get<Status>(v_).message(); }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &std::get<T>(v_); }
  const T* operator->() const { return &std::get<T>(v_); }
  T& operator*() & { return std::get<T>(v_); }
  const T& operator*() const& { return std::get<T>(v_); }

 private:
  std::variant<T, Status> v_;
};

[[noreturn]] inline void assert_fail(const char* file, int line, const char* cond, const std::string& msg) {
  std::fprintf(stderr, "%s:%d: internal error: %s (%s)\n", file, line, msg.c_str(), cond);
  std::abort();
}

}  // namespace ingot

// Broken internal invariant: report file and line, then abort. Never for user input.
#define INGOT_ASSERT(cond, msg)                                              \
  do {                                                                       \
    if (!(cond)) ::ingot::assert_fail(__FILE__, __LINE__, #cond, (msg));     \
  } while (0)

// Propagate an error Status from an expression returning Status.
#define INGOT_RETURN_IF_ERROR(expr)            \
  do {                                         \
    ::ingot::Status _st = (expr);              \
    if (!_st.ok()) return _st;                 \
  } while (0)

#define INGOT_CONCAT_INNER(a, b) a##b
#define INGOT_CONCAT(a, b) INGOT_CONCAT_INNER(a, b)
// Assign the value of a StatusOr expression to `lhs`, or return its error.
#define INGOT_ASSIGN_OR_RETURN(lhs, expr)                               \
  auto INGOT_CONCAT(_so_, __LINE__) = (expr);                           \
  if (!INGOT_CONCAT(_so_, __LINE__).ok())                               \
    return INGOT_CONCAT(_so_, __LINE__).status();                       \
  lhs = std::move(INGOT_CONCAT(_so_, __LINE__)).value()
