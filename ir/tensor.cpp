#include "ir/tensor.h"

#include <cmath>
#include <algorithm>
#include <cstring>
#include <limits>

#include "ir/quant.h"

namespace ingot {

std::shared_ptr<Buffer> Buffer::allocate(size_t bytes) {
  auto b = std::shared_ptr<Buffer>(new Buffer());
  b->storage_.assign(bytes, 0);
  b->data_ = b->storage_.data();
  b->size_ = bytes;
  return b;
}

std::shared_ptr<Buffer> Buffer::view(const uint8_t* data, size_t bytes, std::shared_ptr<const void> owner) {
  auto b = std::shared_ptr<Buffer>(new Buffer());
  b->data_ = data;
  b->size_ = bytes;
  b->owner_ = owner ? std::move(owner) : std::make_shared<int>(0);
  return b;
}

std::shared_ptr<Buffer> Buffer::concat(std::vector<std::shared_ptr<const Buffer>> parts) {
  auto b = std::shared_ptr<Buffer>(new Buffer());
  for (auto& p : parts) b->size_ += p->size();
  b->parts_ = std::move(parts);
  b->materialize_once_ = std::make_unique<std::once_flag>();
  b->owner_ = std::make_shared<int>(0);  // read-only, like a view
  return b;
}

const uint8_t* Buffer::data() const {
  if (materialize_once_) {
    std::call_once(*materialize_once_, [this] {
      materialized_.resize(size_);
      size_t off = 0;
      for (auto& p : parts_) {
        if (p->size()) std::memcpy(materialized_.data() + off, p->data(), p->size());
        off += p->size();
      }
      data_ = materialized_.data();
    });
  }
  return data_;
}

void Buffer::read(size_t offset, size_t len, uint8_t* dst) const {
  INGOT_ASSERT(offset <= size_ && len <= size_ - offset, "Buffer::read out of range");
  if (parts_.empty() || data_) {
    if (len) std::memcpy(dst, data() + offset, len);
    return;
  }
  for (auto& p : parts_) {
    if (len == 0) return;
    if (offset >= p->size()) {
      offset -= p->size();
      continue;
    }
    size_t n = std::min(len, p->size() - offset);
    p->read(offset, n, dst);
    dst += n;
    len -= n;
    offset = 0;
  }
}

bool Buffer::is_materialized() const { return parts_.empty() || data_ != nullptr; }

uint8_t* Buffer::mutable_data() {
  INGOT_ASSERT(!is_view(), "writing through a view buffer");
  return storage_.data();
}

std::string dims_str(const std::vector<int64_t>& dims) {
  std::string r = "[";
  for (size_t i = 0; i < dims.size(); ++i) r += (i ? ", " : "") + std::to_string(dims[i]);
  return r + "]";
}

static StatusOr<int64_t> checked_numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) return Status::Error("negative dimension in shape " + dims_str(shape));
    if (__builtin_mul_overflow(n, d, &n)) return Status::Error("element count of " + dims_str(shape) + " overflows");
  }
  return n;
}

int64_t Tensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape_) n *= d;
  return n;
}

Tensor Tensor::zeros(ElementType type, std::vector<int64_t> shape) {
  auto n = checked_numel(shape);
  INGOT_ASSERT(n.ok(), n.message());
  auto bytes = storage_bytes(type, *n);
  INGOT_ASSERT(bytes.ok(), bytes.message());
  Tensor t;
  t.type_ = type;
  t.shape_ = std::move(shape);
  t.owned_ = Buffer::allocate(static_cast<size_t>(*bytes));
  t.buffer_ = t.owned_;
  return t;
}

StatusOr<Tensor> Tensor::from_buffer(ElementType type, std::vector<int64_t> shape,
                                     std::shared_ptr<const Buffer> buffer) {
  INGOT_ASSIGN_OR_RETURN(int64_t n, checked_numel(shape));
  INGOT_ASSIGN_OR_RETURN(int64_t bytes, storage_bytes(type, n));
  if (!buffer || static_cast<int64_t>(buffer->size()) != bytes)
    return Status::Error("tensor " + std::string(type_name(type)) + dims_str(shape) + " needs " +
                         std::to_string(bytes) + " bytes, buffer has " +
                         std::to_string(buffer ? buffer->size() : 0));
  Tensor t;
  t.type_ = type;
  t.shape_ = std::move(shape);
  t.buffer_ = std::move(buffer);
  return t;
}

Tensor Tensor::from_f32(std::vector<int64_t> shape, const std::vector<float>& values) {
  Tensor t = zeros(ElementType::f32, std::move(shape));
  INGOT_ASSERT(static_cast<int64_t>(values.size()) == t.numel(), "value count does not match shape");
  if (!values.empty()) std::memcpy(t.mutable_raw(), values.data(), values.size() * sizeof(float));
  return t;
}

Tensor Tensor::from_i64(std::vector<int64_t> shape, const std::vector<int64_t>& values) {
  Tensor t = zeros(ElementType::i64, std::move(shape));
  INGOT_ASSERT(static_cast<int64_t>(values.size()) == t.numel(), "value count does not match shape");
  if (!values.empty()) std::memcpy(t.mutable_raw(), values.data(), values.size() * sizeof(int64_t));
  return t;
}

Tensor Tensor::from_values(ElementType type, std::vector<int64_t> shape, const std::vector<double>& values) {
  Tensor t = zeros(type, std::move(shape));
  INGOT_ASSERT(static_cast<int64_t>(values.size()) == t.numel(), "value count does not match shape");
  for (size_t i = 0; i < values.size(); ++i) t.set_f(static_cast<int64_t>(i), values[i]);
  return t;
}

uint8_t* Tensor::mutable_raw() {
  INGOT_ASSERT(owned_ != nullptr, "tensor does not own its buffer");
  return owned_->mutable_data();
}

template <typename T>
static T load(const uint8_t* p, int64_t i) {
  T v;
  std::memcpy(&v, p + i * static_cast<int64_t>(sizeof(T)), sizeof(T));
  return v;
}
template <typename T>
static void store(uint8_t* p, int64_t i, T v) {
  std::memcpy(p + i * static_cast<int64_t>(sizeof(T)), &v, sizeof(T));
}

double Tensor::get_f(int64_t i) const {
  const uint8_t* p = raw();
  switch (type_) {
    case ElementType::f32: return load<float>(p, i);
    case ElementType::f16: return f16_to_f32(load<uint16_t>(p, i));
    case ElementType::bf16: return bf16_to_f32(load<uint16_t>(p, i));
    case ElementType::i64: return static_cast<double>(load<int64_t>(p, i));
    case ElementType::i32: return load<int32_t>(p, i);
    case ElementType::i8: return load<int8_t>(p, i);
    case ElementType::u8: return load<uint8_t>(p, i);
    case ElementType::boolean: return load<uint8_t>(p, i) ? 1.0 : 0.0;
    default: INGOT_ASSERT(false, "get_f on quantized type " + std::string(type_name(type_)));
  }
}

int64_t Tensor::get_i(int64_t i) const {
  const uint8_t* p = raw();
  switch (type_) {
    case ElementType::i64: return load<int64_t>(p, i);
    case ElementType::i32: return load<int32_t>(p, i);
    case ElementType::i8: return load<int8_t>(p, i);
    case ElementType::u8: return load<uint8_t>(p, i);
    case ElementType::boolean: return load<uint8_t>(p, i) ? 1 : 0;
    default: {
      double v = get_f(i);
      if (std::isnan(v)) return 0;
      if (v >= 9.2233720368547758e18) return std::numeric_limits<int64_t>::max();
      if (v <= -9.2233720368547758e18) return std::numeric_limits<int64_t>::min();
      return static_cast<int64_t>(v);
    }
  }
}

template <typename T>
static T saturate(int64_t v) {
  if (v < std::numeric_limits<T>::min()) return std::numeric_limits<T>::min();
  if (v > std::numeric_limits<T>::max()) return std::numeric_limits<T>::max();
  return static_cast<T>(v);
}

void Tensor::set_i(int64_t i, int64_t v) {
  uint8_t* p = mutable_raw();
  switch (type_) {
    case ElementType::i64: store<int64_t>(p, i, v); return;
    case ElementType::i32: store<int32_t>(p, i, saturate<int32_t>(v)); return;
    case ElementType::i8: store<int8_t>(p, i, saturate<int8_t>(v)); return;
    case ElementType::u8: store<uint8_t>(p, i, saturate<uint8_t>(v)); return;
    case ElementType::boolean: store<uint8_t>(p, i, v != 0); return;
    default: set_f(i, static_cast<double>(v)); return;
  }
}

void Tensor::set_f(int64_t i, double v) {
  uint8_t* p = mutable_raw();
  switch (type_) {
    case ElementType::f32: store<float>(p, i, static_cast<float>(v)); return;
    case ElementType::f16: store<uint16_t>(p, i, f32_to_f16(static_cast<float>(v))); return;
    case ElementType::bf16: store<uint16_t>(p, i, f32_to_bf16(static_cast<float>(v))); return;
    case ElementType::boolean: store<uint8_t>(p, i, v != 0.0); return;
    case ElementType::i64: case ElementType::i32: case ElementType::i8: case ElementType::u8: {
      // Truncate toward zero, saturate; NaN becomes 0.
      int64_t iv;
      if (std::isnan(v)) iv = 0;
      else if (v >= 9.2233720368547758e18) iv = std::numeric_limits<int64_t>::max();
      else if (v <= -9.2233720368547758e18) iv = std::numeric_limits<int64_t>::min();
      else iv = static_cast<int64_t>(v);
      set_i(i, iv);
      return;
    }
    default: INGOT_ASSERT(false, "set_f on quantized type " + std::string(type_name(type_)));
  }
}

Tensor Tensor::to_f32() const {
  Tensor r = zeros(ElementType::f32, shape_);
  float* out = reinterpret_cast<float*>(r.mutable_raw());
  if (type_info(type_).is_quantized) {
    // Dequantize row by row along the innermost dimension (whole blocks per row).
    dequantize_row(type_, raw(), out, numel());
  } else {
    for (int64_t i = 0; i < numel(); ++i) out[i] = static_cast<float>(get_f(i));
  }
  return r;
}

std::vector<float> Tensor::to_f32_vector() const {
  Tensor f = to_f32();
  const float* p = reinterpret_cast<const float*>(f.raw());
  return std::vector<float>(p, p + f.numel());
}

std::vector<int64_t> Tensor::to_i64_vector() const {
  std::vector<int64_t> r(static_cast<size_t>(numel()));
  for (int64_t i = 0; i < numel(); ++i) r[static_cast<size_t>(i)] = get_i(i);
  return r;
}

// FNV-1a streams: the hash of a lazy concatenation is computed part by part, without copying.
static void fnv1a(const Buffer& b, uint64_t& h) {
  if (!b.parts().empty() && !b.is_materialized()) {
    for (auto& p : b.parts()) fnv1a(*p, h);
    return;
  }
  const uint8_t* p = b.data();
  for (size_t i = 0; i < b.size(); ++i) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
}

std::string Tensor::content_hash() const {
  uint64_t h = 0xcbf29ce484222325ull;
  if (buffer_) fnv1a(*buffer_, h);
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

}  // namespace ingot
