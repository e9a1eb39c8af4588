// GGUF v2/v3 reader and v3 writer. The reader trusts nothing: every length and count is checked
// against the bytes that remain before anything is allocated, all arithmetic on file-supplied
// numbers is overflow-checked, and each error names the file, the byte offset and the problem.
#include "frontend/gguf.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <limits>
#include <optional>
#include <string_view>

#include "base/split_file_names.h"
#include "runtime/atomic_file.h"

namespace ingot {
namespace {

constexpr char kMagic[4] = {'G', 'G', 'U', 'F'};
constexpr uint32_t kWriteVersion = 3;
constexpr uint64_t kDefaultAlignment = 32;
constexpr uint32_t kMaxDims = 4;            // ggml's GGML_MAX_DIMS
constexpr int kMaxArrayDepth = 8;           // nested arrays deeper than this are rejected
constexpr size_t kMaxTensorNameBytes = 63;  // ggml's GGML_MAX_NAME (64) minus the terminator
constexpr const char* kAlignmentKey = "general.alignment";

// The fewest bytes one encoded item of each kind can take; counts are checked against these
// before any allocation, so a forged count can never make the reader reserve more than the file.
constexpr uint64_t kMinKvBytes = 8 + 4 + 1;              // key length, type, a one-byte value
constexpr uint64_t kMinTensorInfoBytes = 8 + 4 + 8 + 4 + 8;  // name length, n_dims, one dim, type, offset

bool is_known_gguf_type(uint32_t t) { return t <= static_cast<uint32_t>(GgufType::FLOAT64); }

// Bytes of a fixed-size value, or the minimum for strings (the length) and arrays (type + count).
uint64_t min_encoded_bytes(GgufType t) {
  switch (t) {
    case GgufType::UINT8: case GgufType::INT8: case GgufType::BOOL: return 1;
    case GgufType::UINT16: case GgufType::INT16: return 2;
    case GgufType::UINT32: case GgufType::INT32: case GgufType::FLOAT32: return 4;
    case GgufType::UINT64: case GgufType::INT64: case GgufType::FLOAT64: return 8;
    case GgufType::STRING: return 8;
    case GgufType::ARRAY: return 4 + 8;
  }
  return 1;
}

// ggml's names for the types it knows, so that an unsupported one is named in the error.
const char* ggml_type_name(uint32_t id) {
  static constexpr const char* kNames[] = {
      "f32", "f16", "q4_0", "q4_1", nullptr, nullptr, "q5_0", "q5_1", "q8_0", "q8_1",
      "q2_k", "q3_k", "q4_k", "q5_k", "q6_k", "q8_k", "iq2_xxs", "iq2_xs", "iq3_xxs", "iq1_s",
      "iq4_nl", "iq3_s", "iq2_s", "iq4_xs", "i8", "i16", "i32", "i64", "f64", "iq1_m",
      "bf16", nullptr, nullptr, nullptr, "tq1_0", "tq2_0", nullptr, nullptr, nullptr, "mxfp4"};
  return id < std::size(kNames) ? kNames[id] : nullptr;
}

std::string quote_for_message(std::string_view s, size_t max_chars = 80) {
  std::string r = "\"";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i == max_chars) {
      r += "...";
      break;
    }
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      r += '\\';
      r += static_cast<char>(c);
    } else if (c == '\n') {
      r += "\\n";
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      r += buf;
    } else {
      r += static_cast<char>(c);
    }
  }
  return r + "\"";
}

template <typename T>
T load_le(const uint8_t* p) {
  using U = std::make_unsigned_t<T>;
  U v = 0;
  for (size_t i = 0; i < sizeof(T); ++i) v |= static_cast<U>(static_cast<U>(p[i]) << (8 * i));
  return static_cast<T>(v);
}

bool is_power_of_two(uint64_t v) { return v != 0 && (v & (v - 1)) == 0; }

// Rounds up to a multiple of a power-of-two alignment; nullopt on overflow.
std::optional<uint64_t> align_up(uint64_t v, uint64_t alignment) {
  uint64_t r = 0;
  if (__builtin_add_overflow(v, alignment - 1, &r)) return std::nullopt;
  return r & ~(alignment - 1);
}

std::string shortest(double v, bool as_f32) {
  char buf[64];
  auto res = as_f32 ? std::to_chars(buf, buf + sizeof buf, static_cast<float>(v))
                    : std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, res.ptr);
}

}  // namespace

const char* gguf_type_name(GgufType t) {
  switch (t) {
    case GgufType::UINT8: return "u8";
    case GgufType::INT8: return "i8";
    case GgufType::UINT16: return "u16";
    case GgufType::INT16: return "i16";
    case GgufType::UINT32: return "u32";
    case GgufType::INT32: return "i32";
    case GgufType::FLOAT32: return "f32";
    case GgufType::BOOL: return "bool";
    case GgufType::STRING: return "string";
    case GgufType::ARRAY: return "array";
    case GgufType::UINT64: return "u64";
    case GgufType::INT64: return "i64";
    case GgufType::FLOAT64: return "f64";
  }
  return "unknown";
}


namespace {

bool is_integer_type(GgufType t) {
  switch (t) {
    case GgufType::UINT8: case GgufType::INT8: case GgufType::UINT16: case GgufType::INT16:
    case GgufType::UINT32: case GgufType::INT32: case GgufType::UINT64: case GgufType::INT64:
      return true;
    default:
      return false;
  }
}

bool is_float_type(GgufType t) { return t == GgufType::FLOAT32 || t == GgufType::FLOAT64; }

// "u32", or "array of string": what the accessors' errors call a value's type.
std::string describe_type(GgufType type, GgufType elem_type) {
  if (type != GgufType::ARRAY) return gguf_type_name(type);
  return std::string("array of ") + gguf_type_name(elem_type);
}

}  // namespace

// Reads and validates a GGUF file into a GgufFile. Also the one place that builds GgufValues
// (it is their friend), so the factories below go through it.
class GgufReader {
 public:
  using Scalar = std::variant<int64_t, uint64_t, double, bool, std::string>;

  static GgufValue scalar(GgufType type, Scalar v) {
    GgufValue r;
    r.type_ = type;
    r.scalar_ = std::move(v);
    return r;
  }
  static GgufValue array(GgufType elem_type, GgufValue::Array items) {
    GgufValue r;
    r.type_ = GgufType::ARRAY;
    r.elem_type_ = elem_type;
    r.items_ = std::move(items);
    return r;
  }
  static const Scalar& scalar_of(const GgufValue& v) { return v.scalar_; }

  explicit GgufReader(std::shared_ptr<MappedFile> file) : file_(std::move(file)) {}
  StatusOr<std::unique_ptr<GgufFile>> read();

 private:
  Status error_at(uint64_t offset, const std::string& what) const;
  uint64_t remaining() const { return file_->size() - pos_; }
  Status need(uint64_t bytes, const char* what) const;
  template <typename T>
  StatusOr<T> number(const char* what);
  StatusOr<std::string> string(const char* what);

  Status read_header();
  Status read_metadata();
  StatusOr<GgufValue> read_value(GgufType type, int depth);
  StatusOr<GgufValue> read_array(int depth);
  Status read_alignment();
  Status read_tensor_infos();
  Status read_tensor_info();
  Status check_tensor_layout();

  std::shared_ptr<MappedFile> file_;
  std::unique_ptr<GgufFile> out_;
  uint64_t pos_ = 0;
  uint64_t tensor_count_ = 0;
  uint64_t kv_count_ = 0;
  std::string context_;                    // what is being read, appended to error messages
  std::vector<uint64_t> value_offsets_;    // where each metadata value starts
  std::vector<uint64_t> offset_field_at_;  // where each tensor's data-offset field is
};

// --- GgufValue ---------------------------------------------------------------------------------

GgufValue GgufValue::u8(uint8_t v) { return GgufReader::scalar(GgufType::UINT8, uint64_t{v}); }
GgufValue GgufValue::i8(int8_t v) { return GgufReader::scalar(GgufType::INT8, int64_t{v}); }
GgufValue GgufValue::u16(uint16_t v) { return GgufReader::scalar(GgufType::UINT16, uint64_t{v}); }
GgufValue GgufValue::i16(int16_t v) { return GgufReader::scalar(GgufType::INT16, int64_t{v}); }
GgufValue GgufValue::u32(uint32_t v) { return GgufReader::scalar(GgufType::UINT32, uint64_t{v}); }
GgufValue GgufValue::i32(int32_t v) { return GgufReader::scalar(GgufType::INT32, int64_t{v}); }
GgufValue GgufValue::u64(uint64_t v) { return GgufReader::scalar(GgufType::UINT64, v); }
GgufValue GgufValue::i64(int64_t v) { return GgufReader::scalar(GgufType::INT64, v); }
GgufValue GgufValue::f32(float v) { return GgufReader::scalar(GgufType::FLOAT32, double{v}); }
GgufValue GgufValue::f64(double v) { return GgufReader::scalar(GgufType::FLOAT64, v); }
GgufValue GgufValue::boolean(bool v) { return GgufReader::scalar(GgufType::BOOL, v); }
GgufValue GgufValue::string(std::string v) { return GgufReader::scalar(GgufType::STRING, std::move(v)); }
GgufValue GgufValue::array(GgufType elem_type, Array items) {
  return GgufReader::array(elem_type, std::move(items));
}

GgufValue GgufValue::strings(const std::vector<std::string>& v) {
  Array items;
  items.reserve(v.size());
  for (const auto& s : v) items.push_back(string(s));
  return array(GgufType::STRING, std::move(items));
}

GgufValue GgufValue::f32s(const std::vector<float>& v) {
  Array items;
  items.reserve(v.size());
  for (float f : v) items.push_back(f32(f));
  return array(GgufType::FLOAT32, std::move(items));
}

GgufValue GgufValue::i32s(const std::vector<int32_t>& v) {
  Array items;
  items.reserve(v.size());
  for (int32_t i : v) items.push_back(i32(i));
  return array(GgufType::INT32, std::move(items));
}

bool GgufValue::is_integer() const { return is_integer_type(type_); }

StatusOr<int64_t> GgufValue::as_int() const {
  if (type_ == GgufType::BOOL) {
    if (const auto* b = std::get_if<bool>(&scalar_)) return int64_t{*b};
  }
  if (is_integer()) {
    if (const auto* u = std::get_if<uint64_t>(&scalar_)) {
      if (*u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        return Status::Error("u64 value " + std::to_string(*u) + " does not fit in int64");
      return static_cast<int64_t>(*u);
    }
    if (const auto* i = std::get_if<int64_t>(&scalar_)) return *i;
  }
  return Status::Error("expected an integer, got " + describe_type(type_, elem_type_));
}

StatusOr<double> GgufValue::as_float() const {
  if (is_float()) {
    if (const auto* d = std::get_if<double>(&scalar_)) return *d;
  }
  if (is_integer()) {
    if (const auto* u = std::get_if<uint64_t>(&scalar_)) return static_cast<double>(*u);
    if (const auto* i = std::get_if<int64_t>(&scalar_)) return static_cast<double>(*i);
  }
  return Status::Error("expected a number, got " + describe_type(type_, elem_type_));
}

StatusOr<bool> GgufValue::as_bool() const {
  if (type_ == GgufType::BOOL) {
    if (const auto* b = std::get_if<bool>(&scalar_)) return *b;
  }
  return Status::Error("expected a bool, got " + describe_type(type_, elem_type_));
}

StatusOr<std::string> GgufValue::as_string() const {
  if (type_ == GgufType::STRING) {
    if (const auto* s = std::get_if<std::string>(&scalar_)) return *s;
  }
  return Status::Error("expected a string, got " + describe_type(type_, elem_type_));
}

StatusOr<std::vector<std::string>> GgufValue::as_strings() const {
  if (type_ != GgufType::ARRAY || elem_type_ != GgufType::STRING)
    return Status::Error("expected an array of strings, got " + describe_type(type_, elem_type_));
  std::vector<std::string> r;
  r.reserve(items_.size());
  for (const auto& item : items_) {
    INGOT_ASSIGN_OR_RETURN(std::string s, item.as_string());
    r.push_back(std::move(s));
  }
  return r;
}

StatusOr<std::vector<double>> GgufValue::as_floats() const {
  if (type_ != GgufType::ARRAY || !(is_float_type(elem_type_) || is_integer_type(elem_type_)))
    return Status::Error("expected an array of numbers, got " + describe_type(type_, elem_type_));
  std::vector<double> r;
  r.reserve(items_.size());
  for (const auto& item : items_) {
    INGOT_ASSIGN_OR_RETURN(double d, item.as_float());
    r.push_back(d);
  }
  return r;
}

StatusOr<std::vector<int64_t>> GgufValue::as_ints() const {
  if (type_ != GgufType::ARRAY || !is_integer_type(elem_type_))
    return Status::Error("expected an array of integers, got " + describe_type(type_, elem_type_));
  std::vector<int64_t> r;
  r.reserve(items_.size());
  for (const auto& item : items_) {
    INGOT_ASSIGN_OR_RETURN(int64_t i, item.as_int());
    r.push_back(i);
  }
  return r;
}

std::string GgufValue::summary(size_t max_items) const {
  switch (type_) {
    case GgufType::STRING: {
      const auto* s = std::get_if<std::string>(&scalar_);
      return quote_for_message(s ? *s : std::string());
    }
    case GgufType::BOOL: {
      const auto* b = std::get_if<bool>(&scalar_);
      return b && *b ? "true" : "false";
    }
    case GgufType::FLOAT32:
    case GgufType::FLOAT64: {
      const auto* d = std::get_if<double>(&scalar_);
      return shortest(d ? *d : 0.0, type_ == GgufType::FLOAT32);
    }
    case GgufType::ARRAY: {
      std::string r = "[";
      for (size_t i = 0; i < items_.size() && i < max_items; ++i) {
        if (i) r += ", ";
        r += items_[i].summary(max_items);
      }
      if (items_.size() > max_items) r += ", ...";
      r += "]";
      if (items_.size() > max_items)
        r += " (" + std::to_string(items_.size()) + " " + gguf_type_name(elem_type_) + " items)";
      return r;
    }
    default:
      if (const auto* u = std::get_if<uint64_t>(&scalar_)) return std::to_string(*u);
      if (const auto* i = std::get_if<int64_t>(&scalar_)) return std::to_string(*i);
      return "0";
  }
}

// --- Reader ------------------------------------------------------------------------------------

Status GgufReader::error_at(uint64_t offset, const std::string& what) const {
  std::string msg = file_->path() + ": offset " + std::to_string(offset) + ": " + what;
  if (!context_.empty()) msg += " (in " + context_ + ")";
  return Status::Error(std::move(msg));
}

Status GgufReader::need(uint64_t bytes, const char* what) const {
  if (bytes <= remaining()) return Status::Ok();
  return error_at(pos_, std::string("unexpected end of file reading ") + what + ": needs " + std::to_string(bytes) +
                            " bytes, " + std::to_string(remaining()) + " left");
}

template <typename T>
StatusOr<T> GgufReader::number(const char* what) {
  INGOT_RETURN_IF_ERROR(need(sizeof(T), what));
  const T v = load_le<T>(file_->data() + pos_);
  pos_ += sizeof(T);
  return v;
}

StatusOr<std::string> GgufReader::string(const char* what) {
  const uint64_t at = pos_;
  INGOT_ASSIGN_OR_RETURN(uint64_t length, number<uint64_t>(what));
  if (length > remaining()) {
    return error_at(at, std::string(what) + " length " + std::to_string(length) + " exceeds the " +
                            std::to_string(remaining()) + " bytes left in the file");
  }
  std::string s(reinterpret_cast<const char*>(file_->data() + pos_), static_cast<size_t>(length));
  pos_ += length;
  return s;
}

StatusOr<std::unique_ptr<GgufFile>> GgufReader::read() {
  out_ = std::make_unique<GgufFile>();
  out_->file_ = file_;
  INGOT_RETURN_IF_ERROR(read_header());
  INGOT_RETURN_IF_ERROR(read_metadata());
  INGOT_RETURN_IF_ERROR(read_alignment());
  INGOT_RETURN_IF_ERROR(read_tensor_infos());
  INGOT_RETURN_IF_ERROR(check_tensor_layout());
  return std::move(out_);
}

Status GgufReader::read_header() {
  INGOT_RETURN_IF_ERROR(need(4, "the magic"));
  if (std::memcmp(file_->data(), kMagic, 4) != 0) {
    const std::string_view magic(reinterpret_cast<const char*>(file_->data()), 4);
    return error_at(0, "not a GGUF file: magic " + quote_for_message(magic) + ", expected \"GGUF\"");
  }
  pos_ = 4;
  INGOT_ASSIGN_OR_RETURN(uint32_t version, number<uint32_t>("the version"));
  if (version == 1) {
    return error_at(4, "GGUF version 1 is not supported (only versions 2 and 3); convert the model again "
                       "with a current llama.cpp");
  }
  const uint32_t swapped = __builtin_bswap32(version);
  if (swapped == 2 || swapped == 3) {
    return error_at(4, "GGUF version " + std::to_string(version) + " is a big-endian file, which is not supported");
  }
  if (version != 2 && version != 3) {
    return error_at(4, "unsupported GGUF version " + std::to_string(version) + " (supported: 2 and 3)");
  }
  out_->version_ = version;
  INGOT_ASSIGN_OR_RETURN(tensor_count_, number<uint64_t>("the tensor count"));
  INGOT_ASSIGN_OR_RETURN(kv_count_, number<uint64_t>("the metadata count"));

  // Counts are checked against the file size now, so no later reserve() can be forged huge.
  const std::string file_bytes = std::to_string(file_->size()) + "-byte file";
  if (tensor_count_ > remaining() / kMinTensorInfoBytes) {
    return error_at(8, "tensor count " + std::to_string(tensor_count_) + " cannot fit in a " + file_bytes +
                           " (each tensor info takes at least " + std::to_string(kMinTensorInfoBytes) + " bytes)");
  }
  const uint64_t left_for_kv = remaining() - tensor_count_ * kMinTensorInfoBytes;
  if (kv_count_ > left_for_kv / kMinKvBytes) {
    return error_at(16, "metadata count " + std::to_string(kv_count_) + " cannot fit in a " + file_bytes +
                            " (each key/value takes at least " + std::to_string(kMinKvBytes) + " bytes)");
  }
  return Status::Ok();
}

Status GgufReader::read_metadata() {
  out_->metadata_.reserve(kv_count_);
  value_offsets_.reserve(kv_count_);
  for (uint64_t i = 0; i < kv_count_; ++i) {
    context_ = "metadata entry " + std::to_string(i);
    const uint64_t key_at = pos_;
    INGOT_ASSIGN_OR_RETURN(std::string key, string("metadata key"));
    if (out_->metadata_index_.count(key)) return error_at(key_at, "duplicate metadata key " + quote_for_message(key));
    context_ = "metadata " + quote_for_message(key);
    const uint64_t type_at = pos_;
    INGOT_ASSIGN_OR_RETURN(uint32_t type, number<uint32_t>("metadata value type"));
    if (!is_known_gguf_type(type)) return error_at(type_at, "unknown metadata value type " + std::to_string(type));
    value_offsets_.push_back(pos_);
    INGOT_ASSIGN_OR_RETURN(GgufValue value, read_value(static_cast<GgufType>(type), 0));
    out_->metadata_index_.emplace(key, out_->metadata_.size());
    out_->metadata_.emplace_back(std::move(key), std::move(value));
  }
  context_.clear();
  return Status::Ok();
}

StatusOr<GgufValue> GgufReader::read_value(GgufType type, int depth) {
  switch (type) {
    case GgufType::UINT8: {
      INGOT_ASSIGN_OR_RETURN(uint8_t v, number<uint8_t>("a u8 value"));
      return GgufValue::u8(v);
    }
    case GgufType::INT8: {
      INGOT_ASSIGN_OR_RETURN(int8_t v, number<int8_t>("an i8 value"));
      return GgufValue::i8(v);
    }
    case GgufType::UINT16: {
      INGOT_ASSIGN_OR_RETURN(uint16_t v, number<uint16_t>("a u16 value"));
      return GgufValue::u16(v);
    }
    case GgufType::INT16: {
      INGOT_ASSIGN_OR_RETURN(int16_t v, number<int16_t>("an i16 value"));
      return GgufValue::i16(v);
    }
    case GgufType::UINT32: {
      INGOT_ASSIGN_OR_RETURN(uint32_t v, number<uint32_t>("a u32 value"));
      return GgufValue::u32(v);
    }
    case GgufType::INT32: {
      INGOT_ASSIGN_OR_RETURN(int32_t v, number<int32_t>("an i32 value"));
      return GgufValue::i32(v);
    }
    case GgufType::UINT64: {
      INGOT_ASSIGN_OR_RETURN(uint64_t v, number<uint64_t>("a u64 value"));
      return GgufValue::u64(v);
    }
    case GgufType::INT64: {
      INGOT_ASSIGN_OR_RETURN(int64_t v, number<int64_t>("an i64 value"));
      return GgufValue::i64(v);
    }
    case GgufType::FLOAT32: {
      INGOT_ASSIGN_OR_RETURN(uint32_t bits, number<uint32_t>("an f32 value"));
      return GgufValue::f32(std::bit_cast<float>(bits));
    }
    case GgufType::FLOAT64: {
      INGOT_ASSIGN_OR_RETURN(uint64_t bits, number<uint64_t>("an f64 value"));
      return GgufValue::f64(std::bit_cast<double>(bits));
    }
    case GgufType::BOOL: {
      const uint64_t at = pos_;
      INGOT_ASSIGN_OR_RETURN(uint8_t v, number<uint8_t>("a bool value"));
      if (v > 1) return error_at(at, "bool value " + std::to_string(v) + " is neither 0 nor 1");
      return GgufValue::boolean(v == 1);
    }
    case GgufType::STRING: {
      INGOT_ASSIGN_OR_RETURN(std::string s, string("string"));
      return GgufValue::string(std::move(s));
    }
    case GgufType::ARRAY:
      return read_array(depth);
  }
  return error_at(pos_, "unknown metadata value type " + std::to_string(static_cast<uint32_t>(type)));
}

StatusOr<GgufValue> GgufReader::read_array(int depth) {
  const uint64_t at = pos_;
  if (depth >= kMaxArrayDepth) {
    return error_at(at, "arrays nested more than " + std::to_string(kMaxArrayDepth) + " deep");
  }
  INGOT_ASSIGN_OR_RETURN(uint32_t elem, number<uint32_t>("array element type"));
  if (!is_known_gguf_type(elem)) return error_at(at, "unknown array element type " + std::to_string(elem));
  const auto elem_type = static_cast<GgufType>(elem);
  const uint64_t count_at = pos_;
  INGOT_ASSIGN_OR_RETURN(uint64_t count, number<uint64_t>("array length"));
  // Every item takes at least min_encoded_bytes, so this bounds the reserve below by the file.
  if (count > remaining() / min_encoded_bytes(elem_type)) {
    return error_at(count_at, "array of " + std::to_string(count) + " " + gguf_type_name(elem_type) +
                                  " items cannot fit in the " + std::to_string(remaining()) +
                                  " bytes left in the file");
  }
  GgufValue::Array items;
  items.reserve(static_cast<size_t>(count));
  for (uint64_t i = 0; i < count; ++i) {
    INGOT_ASSIGN_OR_RETURN(GgufValue item, read_value(elem_type, depth + 1));
    items.push_back(std::move(item));
  }
  return GgufValue::array(elem_type, std::move(items));
}

Status GgufReader::read_alignment() {
  auto it = out_->metadata_index_.find(kAlignmentKey);
  if (it == out_->metadata_index_.end()) return Status::Ok();
  const GgufValue& v = out_->metadata_[it->second].second;
  const uint64_t at = value_offsets_[it->second];
  if (v.type() != GgufType::UINT32) {
    return error_at(at, std::string(kAlignmentKey) + " must be a u32, got " + describe_type(v.type(), v.elem_type()));
  }
  const auto* value = std::get_if<uint64_t>(&scalar_of(v));
  const uint64_t alignment = value ? *value : 0;
  if (!is_power_of_two(alignment)) {
    return error_at(at, std::string(kAlignmentKey) + " must be a non-zero power of two, got " +
                            std::to_string(alignment));
  }
  out_->alignment_ = alignment;
  return Status::Ok();
}

Status GgufReader::read_tensor_infos() {
  out_->tensors_.reserve(tensor_count_);
  offset_field_at_.reserve(tensor_count_);
  for (uint64_t i = 0; i < tensor_count_; ++i) {
    context_ = "tensor info " + std::to_string(i);
    INGOT_RETURN_IF_ERROR(read_tensor_info());
  }
  context_.clear();
  // pos_ <= file size, so this cannot overflow; with no tensors it may lie past the end.
  out_->data_offset_ = align_up(pos_, out_->alignment_).value_or(pos_);
  return Status::Ok();
}

Status GgufReader::read_tensor_info() {
  const uint64_t name_at = pos_;
  INGOT_ASSIGN_OR_RETURN(std::string name, string("tensor name"));
  if (out_->tensor_index_.count(name)) return error_at(name_at, "duplicate tensor name " + quote_for_message(name));
  context_ = "tensor " + quote_for_message(name);

  const uint64_t n_dims_at = pos_;
  INGOT_ASSIGN_OR_RETURN(uint32_t n_dims, number<uint32_t>("tensor dimension count"));
  if (n_dims == 0 || n_dims > kMaxDims) {
    return error_at(n_dims_at, "tensor has " + std::to_string(n_dims) + " dimensions; GGUF allows 1 to " +
                                   std::to_string(kMaxDims));
  }
  std::vector<int64_t> ggml_dims;  // fastest-varying first
  int64_t numel = 1;
  for (uint32_t d = 0; d < n_dims; ++d) {
    const uint64_t dim_at = pos_;
    INGOT_ASSIGN_OR_RETURN(uint64_t dim, number<uint64_t>("tensor dimension"));
    if (dim == 0) return error_at(dim_at, "dimension " + std::to_string(d) + " is 0");
    if (dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
        __builtin_mul_overflow(numel, static_cast<int64_t>(dim), &numel)) {
      return error_at(dim_at, "element count overflows 64 bits at dimension " + std::to_string(d) + " (" +
                                  std::to_string(dim) + ")");
    }
    ggml_dims.push_back(static_cast<int64_t>(dim));
  }

  const uint64_t type_at = pos_;
  INGOT_ASSIGN_OR_RETURN(uint32_t ggml_type, number<uint32_t>("tensor type"));
  std::optional<ElementType> type;
  if (ggml_type <= static_cast<uint32_t>(std::numeric_limits<int>::max()))
    type = element_type_from_ggml(static_cast<int>(ggml_type));
  if (!type) {
    const char* known = ggml_type_name(ggml_type);
    if (known) {
      return error_at(type_at, "ggml type " + std::to_string(ggml_type) + " (" + known + ") is not supported");
    }
    return error_at(type_at, "unknown ggml type " + std::to_string(ggml_type));
  }
  const ElementTypeInfo& info = type_info(*type);
  if (ggml_dims[0] % info.block_elems != 0) {
    return error_at(type_at, std::string(info.name) + " stores blocks of " + std::to_string(info.block_elems) +
                                 " elements, but the inner dimension " + std::to_string(ggml_dims[0]) +
                                 " is not a multiple of " + std::to_string(info.block_elems));
  }
  auto bytes = storage_bytes(*type, numel);
  if (!bytes.ok()) return error_at(type_at, bytes.message());

  const uint64_t offset_at = pos_;
  INGOT_ASSIGN_OR_RETURN(uint64_t offset, number<uint64_t>("tensor data offset"));
  if (offset % out_->alignment_ != 0) {
    return error_at(offset_at, "data offset " + std::to_string(offset) + " is not a multiple of the alignment " +
                                   std::to_string(out_->alignment_));
  }

  GgufTensorInfo t;
  t.name = name;
  t.shape.assign(ggml_dims.rbegin(), ggml_dims.rend());
  t.type = *type;
  t.offset = offset;  // relative to the data section until check_tensor_layout
  t.bytes = static_cast<uint64_t>(*bytes);
  out_->tensor_index_.emplace(std::move(name), out_->tensors_.size());
  out_->tensors_.push_back(std::move(t));
  offset_field_at_.push_back(offset_at);
  return Status::Ok();
}

// Makes offsets absolute and checks that every tensor lies inside the file and none overlap.
Status GgufReader::check_tensor_layout() {
  auto& tensors = out_->tensors_;
  const uint64_t file_size = file_->size();
  for (size_t i = 0; i < tensors.size(); ++i) {
    GgufTensorInfo& t = tensors[i];
    context_ = "tensor " + quote_for_message(t.name);
    uint64_t start = 0, end = 0;
    if (__builtin_add_overflow(out_->data_offset_, t.offset, &start) ||
        __builtin_add_overflow(start, t.bytes, &end) || end > file_size) {
      return error_at(offset_field_at_[i], "data offset " + std::to_string(t.offset) + " + " +
                                               std::to_string(t.bytes) + " bytes from the data section at " +
                                               std::to_string(out_->data_offset_) + " ends past the end of the " +
                                               std::to_string(file_size) + "-byte file");
    }
    t.offset = start;
  }
  std::vector<size_t> order(tensors.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return tensors[a].offset != tensors[b].offset ? tensors[a].offset < tensors[b].offset : a < b;
  });
  for (size_t k = 1; k < order.size(); ++k) {
    const GgufTensorInfo& prev = tensors[order[k - 1]];
    const GgufTensorInfo& cur = tensors[order[k]];
    if (cur.offset < prev.offset + prev.bytes) {
      context_ = "tensor " + quote_for_message(cur.name);
      return error_at(offset_field_at_[order[k]],
                      "data [" + std::to_string(cur.offset) + ", " + std::to_string(cur.offset + cur.bytes) +
                          ") overlaps tensor " + quote_for_message(prev.name) + " at [" + std::to_string(prev.offset) + ", " +
                          std::to_string(prev.offset + prev.bytes) + ")");
    }
  }
  context_.clear();
  return Status::Ok();
}

// --- GgufFile ----------------------------------------------------------------------------------

StatusOr<std::unique_ptr<GgufFile>> GgufFile::open(const std::string& path) {
  INGOT_ASSIGN_OR_RETURN(std::shared_ptr<MappedFile> file, MappedFile::open(path));
  INGOT_ASSIGN_OR_RETURN(std::unique_ptr<GgufFile> f, parse(std::move(file)));
  INGOT_RETURN_IF_ERROR(f->open_more_splits());
  return f;
}

namespace {
// Splits of one model at most (gguf-split's count is a u16; real models have a few dozen).
constexpr int64_t kMaxSplits = 4096;
}  // namespace

Status GgufFile::open_more_splits() {
  const GgufValue* count_v = find("split.count");
  if (!count_v) return Status::Ok();
  auto int_key = [&](const GgufFile& f, const char* key) -> StatusOr<int64_t> {
    const GgufValue* v = f.find(key);
    if (!v) return Status::Error(f.path() + ": metadata key '" + key + "' is missing (a split model's file)");
    auto i = v->as_int();
    if (!i.ok()) return i.status().with_context(f.path() + ": " + key);
    return *i;
  };
  INGOT_ASSIGN_OR_RETURN(int64_t count, int_key(*this, "split.count"));
  if (count <= 1) return Status::Ok();
  if (count > kMaxSplits) return Status::Error(path() + ": split.count " + std::to_string(count) + " is more than " + std::to_string(kMaxSplits));
  INGOT_ASSIGN_OR_RETURN(int64_t no, int_key(*this, "split.no"));
  if (no < 0 || no >= count)
    return Status::Error(path() + ": split.no " + std::to_string(no) + " is not in [0, " + std::to_string(count) + ")");
  const std::string& p = path();
  if (no != 0) {
    const std::optional<std::string> own = split_file_prefix(p, no, count);
    return Status::Error(p + ": is file " + std::to_string(no + 1) + " of a model split in " + std::to_string(count) +
                         ": open the first one" + (own ? ", " + split_file_path(*own, 0, count) : ""));
  }
  const std::optional<std::string> prefix = split_file_prefix(p, 0, count);
  if (!prefix)
    return Status::Error(p + ": is the first file of a model split in " + std::to_string(count) + ", but its name does not end in '" +
                         split_file_path("", 0, count) + "', so the others cannot be found (llama.cpp's split naming)");
  for (int64_t i = 1; i < count; ++i) {
    const std::string sp = split_file_path(*prefix, i, count);
    auto mapped_or = MappedFile::open(sp);
    if (!mapped_or.ok())
      return Status::Error(p + ": file " + std::to_string(i + 1) + " of this split model: " + mapped_or.message());
    std::shared_ptr<MappedFile> mapped = std::move(mapped_or).value();
    INGOT_ASSIGN_OR_RETURN(std::unique_ptr<GgufFile> part, parse(std::move(mapped)));
    INGOT_ASSIGN_OR_RETURN(int64_t part_no, int_key(*part, "split.no"));
    INGOT_ASSIGN_OR_RETURN(int64_t part_count, int_key(*part, "split.count"));
    if (part_no != i || part_count != count)
      return Status::Error(sp + ": split.no " + std::to_string(part_no) + " of split.count " + std::to_string(part_count) +
                           ", expected " + std::to_string(i) + " of " + std::to_string(count));
    for (GgufTensorInfo t : part->tensors_) {
      if (tensor_index_.count(t.name))
        return Status::Error(sp + ": tensor " + quote_for_message(t.name) + " is also in another file of the split model");
      t.split = static_cast<uint32_t>(i);
      tensor_index_[t.name] = tensors_.size();
      tensors_.push_back(std::move(t));
    }
    more_splits_.push_back(part->file_);
  }
  {  // required, as llama.cpp requires it
    INGOT_ASSIGN_OR_RETURN(int64_t n, int_key(*this, "split.tensors.count"));
    if (n != static_cast<int64_t>(tensors_.size()))
      return Status::Error(p + ": split.tensors.count is " + std::to_string(n) + " but the " + std::to_string(count) +
                           " files hold " + std::to_string(tensors_.size()) + " tensors");
  }
  return Status::Ok();
}

StatusOr<std::unique_ptr<GgufFile>> GgufFile::parse(std::shared_ptr<MappedFile> file) {
  if (!file) return Status::Error("GGUF: no file to parse");
  return GgufReader(std::move(file)).read();
}

const GgufValue* GgufFile::find(const std::string& key) const {
  auto it = metadata_index_.find(key);
  return it == metadata_index_.end() ? nullptr : &metadata_[it->second].second;
}

const GgufTensorInfo* GgufFile::find_tensor(const std::string& name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

std::vector<std::string> GgufFile::split_paths() const {
  std::vector<std::string> out{path()};
  for (const auto& f : more_splits_) out.push_back(f->path());
  return out;
}

StatusOr<std::shared_ptr<const Tensor>> GgufFile::tensor(const std::string& name) const {
  const GgufTensorInfo* info = find_tensor(name);
  if (!info) return Status::Error(path() + ": no tensor named " + quote_for_message(name));
  // Validated on parse: [offset, offset + bytes) lies inside the mapping of its file.
  const std::shared_ptr<MappedFile>& file = info->split == 0 ? file_ : more_splits_[info->split - 1];
  auto buffer = Buffer::view(file->data() + info->offset, static_cast<size_t>(info->bytes), file);
  auto t = Tensor::from_buffer(info->type, info->shape, std::move(buffer));
  if (!t.ok()) return Status::Error(path_of(*info) + ": tensor " + quote_for_message(name) + ": " + t.message());
  return std::make_shared<const Tensor>(std::move(t).value());
}

// --- Writer ------------------------------------------------------------------------------------

namespace {

// Little-endian encoder for the header, metadata and tensor infos.
class ByteSink {
 public:
  void bytes(const void* p, size_t n) { out_.append(static_cast<const char*>(p), n); }
  template <typename T>
  void number(T v) {
    using U = std::make_unsigned_t<T>;
    const U u = static_cast<U>(v);
    for (size_t i = 0; i < sizeof(T); ++i) out_.push_back(static_cast<char>((u >> (8 * i)) & 0xff));
  }
  void string(const std::string& s) {
    number<uint64_t>(s.size());
    out_ += s;
  }
  void pad_to(uint64_t alignment) {
    while (out_.size() % alignment != 0) out_.push_back('\0');
  }
  const std::string& str() const { return out_; }

 private:
  std::string out_;
};

uint64_t integer_bits(const GgufReader::Scalar& s) {
  if (const auto* u = std::get_if<uint64_t>(&s)) return *u;
  if (const auto* i = std::get_if<int64_t>(&s)) return static_cast<uint64_t>(*i);
  if (const auto* b = std::get_if<bool>(&s)) return *b ? 1 : 0;
  return 0;
}

double float_value(const GgufReader::Scalar& s) {
  if (const auto* d = std::get_if<double>(&s)) return *d;
  return 0.0;
}

// A value the writer can encode: arrays hold only items of their declared type, nest boundedly.
Status check_writable(const GgufValue& v, int depth) {
  if (!is_known_gguf_type(static_cast<uint32_t>(v.type())))
    return Status::Error("unknown value type " + std::to_string(static_cast<uint32_t>(v.type())));
  if (v.type() != GgufType::ARRAY) return Status::Ok();
  if (depth >= kMaxArrayDepth)
    return Status::Error("arrays nested more than " + std::to_string(kMaxArrayDepth) + " deep");
  if (!is_known_gguf_type(static_cast<uint32_t>(v.elem_type())))
    return Status::Error("unknown array element type " + std::to_string(static_cast<uint32_t>(v.elem_type())));
  for (size_t i = 0; i < v.items().size(); ++i) {
    const GgufValue& item = v.items()[i];
    if (item.type() != v.elem_type()) {
      return Status::Error("array item " + std::to_string(i) + " is " + gguf_type_name(item.type()) +
                           ", but the array holds " + gguf_type_name(v.elem_type()));
    }
    INGOT_RETURN_IF_ERROR(check_writable(item, depth + 1));
  }
  return Status::Ok();
}

void encode_value(ByteSink& out, const GgufValue& v) {
  const auto& s = GgufReader::scalar_of(v);
  switch (v.type()) {
    case GgufType::UINT8: case GgufType::INT8: case GgufType::BOOL:
      out.number<uint8_t>(static_cast<uint8_t>(integer_bits(s)));
      break;
    case GgufType::UINT16: case GgufType::INT16:
      out.number<uint16_t>(static_cast<uint16_t>(integer_bits(s)));
      break;
    case GgufType::UINT32: case GgufType::INT32:
      out.number<uint32_t>(static_cast<uint32_t>(integer_bits(s)));
      break;
    case GgufType::UINT64: case GgufType::INT64:
      out.number<uint64_t>(integer_bits(s));
      break;
    case GgufType::FLOAT32:
      out.number<uint32_t>(std::bit_cast<uint32_t>(static_cast<float>(float_value(s))));
      break;
    case GgufType::FLOAT64:
      out.number<uint64_t>(std::bit_cast<uint64_t>(float_value(s)));
      break;
    case GgufType::STRING: {
      const auto* str = std::get_if<std::string>(&s);
      out.string(str ? *str : std::string());
      break;
    }
    case GgufType::ARRAY:
      out.number<uint32_t>(static_cast<uint32_t>(v.elem_type()));
      out.number<uint64_t>(v.items().size());
      for (const GgufValue& item : v.items()) encode_value(out, item);
      break;
  }
}

StatusOr<uint64_t> writer_alignment(const std::vector<std::pair<std::string, GgufValue>>& metadata) {
  for (const auto& [key, value] : metadata) {
    if (key != kAlignmentKey) continue;
    const uint64_t a = integer_bits(GgufReader::scalar_of(value));
    if (value.type() != GgufType::UINT32 || !is_power_of_two(a))
      return Status::Error(std::string(kAlignmentKey) + " must be a u32 non-zero power of two, got " +
                           describe_type(value.type(), value.elem_type()) + " " + value.summary());
    return a;
  }
  return kDefaultAlignment;
}


// The output written under a temporary name beside the target and renamed into place on commit
// (runtime/atomic_file.h: only a new or regular, writable file is replaced; the temporary goes
// on failure and on SIGINT/SIGTERM), with zero padding to an alignment.
class PaddedFile {
 public:
  static StatusOr<std::unique_ptr<PaddedFile>> create(const std::string& path) {
    INGOT_ASSIGN_OR_RETURN(std::unique_ptr<ingot::AtomicFile> f, ingot::AtomicFile::create(path));
    return std::unique_ptr<PaddedFile>(new PaddedFile(std::move(f)));
  }
  Status write(const void* data, size_t n) { return f_->write(data, n); }
  Status pad_to(uint64_t alignment) {
    static const uint8_t kZeros[256] = {};
    while (f_->written() % alignment != 0) {
      const uint64_t n = std::min<uint64_t>(alignment - f_->written() % alignment, sizeof kZeros);
      INGOT_RETURN_IF_ERROR(write(kZeros, static_cast<size_t>(n)));
    }
    return Status::Ok();
  }
  Status commit() { return f_->commit(); }

 private:
  explicit PaddedFile(std::unique_ptr<ingot::AtomicFile> f) : f_(std::move(f)) {}
  std::unique_ptr<ingot::AtomicFile> f_;
};

Status check_tensor_shape(const std::string& name, ElementType type, const std::vector<int64_t>& shape) {
  const auto fail = [&](const std::string& what) {
    return Status::Error("GGUF writer: tensor " + quote_for_message(name) + ": " + what);
  };
  if (name.empty()) return fail("empty name");
  if (name.size() > kMaxTensorNameBytes)
    return fail("name is " + std::to_string(name.size()) + " bytes; llama.cpp allows at most " +
                std::to_string(kMaxTensorNameBytes));
  const ElementTypeInfo& info = type_info(type);
  if (info.ggml_type < 0) return fail(std::string("type ") + info.name + " has no GGUF encoding");
  if (shape.empty() || shape.size() > kMaxDims)
    return fail("rank " + std::to_string(shape.size()) + "; GGUF stores 1 to 4 dimensions");
  int64_t numel = 1;
  for (int64_t d : shape) {
    if (d <= 0) return fail("shape " + dims_str(shape) + " has a dimension that is not positive");
    if (__builtin_mul_overflow(numel, d, &numel)) return fail("element count of " + dims_str(shape) + " overflows");
  }
  if (shape.back() % info.block_elems != 0)
    return fail(std::string(info.name) + " needs an inner dimension that is a multiple of " +
                std::to_string(info.block_elems) + ", shape is " + dims_str(shape));
  return Status::Ok();
}

}  // namespace

void GgufWriter::set(const std::string& key, GgufValue v) {
  for (auto& [k, value] : metadata_) {
    if (k == key) {
      value = std::move(v);
      return;
    }
  }
  metadata_.emplace_back(key, std::move(v));
}

Status GgufWriter::add_tensor(const std::string& name, std::shared_ptr<const Tensor> t) {
  if (!t || !t->defined()) return Status::Error("GGUF writer: tensor " + quote_for_message(name) + " has no data");
  PendingTensor p;
  p.name = name;
  p.type = t->type();
  p.shape = t->shape();
  p.bytes = t->nbytes();
  p.data = std::move(t);
  INGOT_RETURN_IF_ERROR(check_tensor_shape(p.name, p.type, p.shape));
  for (const auto& other : tensors_) {
    if (other.name == name) return Status::Error("GGUF writer: duplicate tensor " + quote_for_message(name));
  }
  tensors_.push_back(std::move(p));
  return Status::Ok();
}

Status GgufWriter::add_tensor_generator(const std::string& name, ElementType type, std::vector<int64_t> shape,
                                        TensorFill fill) {
  INGOT_RETURN_IF_ERROR(check_tensor_shape(name, type, shape));
  if (!fill) return Status::Error("GGUF writer: tensor " + quote_for_message(name) + " has no fill function");
  for (const auto& other : tensors_) {
    if (other.name == name) return Status::Error("GGUF writer: duplicate tensor " + quote_for_message(name));
  }
  int64_t numel = 1;
  for (int64_t d : shape) numel *= d;  // checked above
  auto bytes = storage_bytes(type, numel);
  if (!bytes.ok()) return Status::Error("GGUF writer: tensor " + quote_for_message(name) + ": " + bytes.message());
  PendingTensor p;
  p.name = name;
  p.type = type;
  p.shape = std::move(shape);
  p.bytes = static_cast<uint64_t>(*bytes);
  p.fill = std::move(fill);
  tensors_.push_back(std::move(p));
  return Status::Ok();
}

Status GgufWriter::write(const std::string& path) const {
  auto alignment_or = writer_alignment(metadata_);
  if (!alignment_or.ok()) return Status::Error(path + ": " + alignment_or.message());
  const uint64_t alignment = *alignment_or;

  ByteSink head;
  head.bytes(kMagic, 4);
  head.number<uint32_t>(kWriteVersion);
  head.number<uint64_t>(tensors_.size());
  head.number<uint64_t>(metadata_.size());
  for (const auto& [key, value] : metadata_) {
    Status st = check_writable(value, 0);
    if (!st.ok()) return Status::Error(path + ": metadata " + quote_for_message(key) + ": " + st.message());
    head.string(key);
    head.number<uint32_t>(static_cast<uint32_t>(value.type()));
    encode_value(head, value);
  }
  uint64_t data_size = 0;
  for (const PendingTensor& t : tensors_) {
    head.string(t.name);
    head.number<uint32_t>(static_cast<uint32_t>(t.shape.size()));
    for (auto it = t.shape.rbegin(); it != t.shape.rend(); ++it) head.number<uint64_t>(static_cast<uint64_t>(*it));
    head.number<uint32_t>(static_cast<uint32_t>(type_info(t.type).ggml_type));
    head.number<uint64_t>(data_size);
    // Each tensor is padded to the alignment, as llama.cpp expects tensors packed in order.
    auto next = align_up(data_size + t.bytes, alignment);
    if (!next || data_size + t.bytes < data_size) return Status::Error(path + ": tensor data exceeds 64 bits");
    data_size = *next;
  }
  head.pad_to(alignment);

  INGOT_ASSIGN_OR_RETURN(std::unique_ptr<PaddedFile> out, PaddedFile::create(path));
  INGOT_RETURN_IF_ERROR(out->write(head.str().data(), head.str().size()));
  std::vector<uint8_t> scratch;  // generated tensors, one at a time
  for (const PendingTensor& t : tensors_) {
    if (t.data) {
      INGOT_RETURN_IF_ERROR(out->write(t.data->raw(), static_cast<size_t>(t.bytes)));
    } else {
      scratch.assign(static_cast<size_t>(t.bytes), 0);
      Status st = t.fill(scratch.data(), scratch.size());
      if (!st.ok()) return Status::Error(path + ": tensor " + quote_for_message(t.name) + ": " + st.message());
      INGOT_RETURN_IF_ERROR(out->write(scratch.data(), scratch.size()));
    }
    INGOT_RETURN_IF_ERROR(out->pad_to(alignment));
  }
  return out->commit();
}

}  // namespace ingot
