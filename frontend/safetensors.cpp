#include "frontend/safetensors.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <optional>
#include <utility>

#include <nlohmann/json.hpp>

#include "frontend/hf_config.h"

namespace ingot {

using nlohmann::json;

size_t find_invalid_utf8(std::string_view s) {
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    const auto lead = static_cast<unsigned char>(s[i]);
    if (lead < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp, min_cp;
    if ((lead & 0xE0) == 0xC0) {
      len = 2, cp = lead & 0x1F, min_cp = 0x80;
    } else if ((lead & 0xF0) == 0xE0) {
      len = 3, cp = lead & 0x0F, min_cp = 0x800;
    } else if ((lead & 0xF8) == 0xF0) {
      len = 4, cp = lead & 0x07, min_cp = 0x10000;
    } else {
      return i;  // a continuation byte or 0xF8..0xFF where a character should start
    }
    if (n - i < len) return i;
    for (size_t k = 1; k < len; ++k) {
      const auto cont = static_cast<unsigned char>(s[i + k]);
      if ((cont & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (cont & 0x3F);
    }
    // Overlong forms, UTF-16 surrogates and code points past Unicode's range are not UTF-8.
    if (cp < min_cp || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
    i += len;
  }
  return std::string_view::npos;
}

namespace {

struct DtypeInfo {
  const char* name;
  ElementType type;
};
// I32/I64/BOOL cost nothing extra; the others safetensors knows (F64, I16, U16, U32, U64, F8_*)
// have no ElementType.
constexpr DtypeInfo kDtypes[] = {
    {"F32", ElementType::f32}, {"F16", ElementType::f16}, {"BF16", ElementType::bf16},
    {"I8", ElementType::i8},   {"U8", ElementType::u8},   {"I32", ElementType::i32},
    {"I64", ElementType::i64}, {"BOOL", ElementType::boolean},
};

std::optional<ElementType> element_type_from_dtype(std::string_view dtype) {
  for (const auto& d : kDtypes)
    if (dtype == d.name) return d.type;
  return std::nullopt;
}

std::string supported_dtypes() {
  std::string s;
  for (const auto& d : kDtypes) s += std::string(s.empty() ? "" : ", ") + d.name;
  return s;
}

uint64_t read_u64_le(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// A JSON value as it appears in messages, cut short: corrupt files can hold huge strings.
std::string show(const json& v) {
  std::string s = v.dump();
  if (s.size() > 40) s = s.substr(0, 37) + "...";
  return s;
}

std::string offsets_str(uint64_t begin, uint64_t end) {
  return "[" + std::to_string(begin) + ", " + std::to_string(end) + "]";
}

std::string dirname_of(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

// Validates the header and fills a SafetensorsFile. Errors: "PATH: what is wrong".
class SafetensorsHeaderReader {
 public:
  explicit SafetensorsHeaderReader(std::shared_ptr<MappedFile> file) : out_(new SafetensorsFile()) {
    out_->file_ = std::move(file);
  }

  StatusOr<std::unique_ptr<SafetensorsFile>> run() {
    INGOT_ASSIGN_OR_RETURN(std::string_view text, header_text());
    INGOT_ASSIGN_OR_RETURN(json header, hf::parse_json(text, path() + ": header", /*reject_duplicate_keys=*/true));
    if (!header.is_object()) return error("header is not a JSON object (it is " + hf::json_type_name(header) + ")");
    try {
      for (const auto& [key, value] : header.items()) {
        if (key == "__metadata__") {
          INGOT_RETURN_IF_ERROR(read_metadata(value));
        } else {
          INGOT_RETURN_IF_ERROR(read_tensor(key, value));
        }
      }
    } catch (const std::exception& e) {  // every access checks the type first; a safety net
      return error(std::string("unexpected header content: ") + e.what());
    }
    INGOT_RETURN_IF_ERROR(check_no_overlap());
    for (size_t i = 0; i < out_->tensors_.size(); ++i) out_->index_[out_->tensors_[i].name] = i;
    return std::move(out_);
  }

 private:
  const std::string& path() const { return out_->file_->path(); }
  Status error(const std::string& message) const { return Status::Error(path() + ": " + message); }
  Status tensor_error(const std::string& name, const std::string& message) const {
    return error("tensor '" + name + "': " + message);
  }

  // The u64 length, the header's bounds, and its UTF-8.
  StatusOr<std::string_view> header_text() {
    const MappedFile& f = *out_->file_;
    if (f.size() < 8)
      return error("file is " + std::to_string(f.size()) + " bytes, too short for the 8-byte header length");
    const uint64_t n = read_u64_le(f.data());
    const uint64_t room = f.size() - 8;
    if (n > room)
      return error("header length " + std::to_string(n) + " runs past the end of the " + std::to_string(f.size()) +
                   "-byte file");
    if (n > SafetensorsFile::kMaxHeaderBytes)
      return error("header length " + std::to_string(n) + " exceeds the limit of " +
                   std::to_string(SafetensorsFile::kMaxHeaderBytes) + " bytes");
    if (n < 2) return error("header length " + std::to_string(n) + " is too small for a JSON object");
    std::string_view text(reinterpret_cast<const char*>(f.data() + 8), n);
    size_t bad = find_invalid_utf8(text);
    if (bad != std::string_view::npos)
      return error("header is not valid UTF-8 (byte " + std::to_string(8 + bad) + " of the file)");
    out_->data_offset_ = 8 + n;
    data_bytes_ = room - n;
    return text;
  }

  Status read_metadata(const json& value) {
    if (!value.is_object()) return error("'__metadata__' must be an object of strings, got " + hf::json_type_name(value));
    for (const auto& [key, v] : value.items()) {
      if (!v.is_string())
        return error("'__metadata__' key '" + key + "' must map to a string, got " + hf::json_type_name(v));
      out_->metadata_[key] = v.get<std::string>();
    }
    return Status::Ok();
  }

  Status read_tensor(const std::string& name, const json& entry) {
    if (name.empty()) return error("a tensor has an empty name");
    if (!entry.is_object())
      return tensor_error(name, "expected an object with dtype, shape and data_offsets, got " + hf::json_type_name(entry));
    for (const auto& [key, v] : entry.items()) {
      if (key != "dtype" && key != "shape" && key != "data_offsets") return tensor_error(name, "unexpected key '" + key + "'");
    }
    SafetensorsTensorInfo info;
    info.name = name;
    INGOT_RETURN_IF_ERROR(read_dtype(name, entry, info));
    INGOT_ASSIGN_OR_RETURN(info.shape, read_shape(name, entry));
    INGOT_RETURN_IF_ERROR(read_offsets(name, entry, info));
    out_->tensors_.push_back(std::move(info));
    return Status::Ok();
  }

  Status read_dtype(const std::string& name, const json& entry, SafetensorsTensorInfo& info) const {
    auto it = entry.find("dtype");
    if (it == entry.end()) return tensor_error(name, "missing key 'dtype'");
    if (!it->is_string()) return tensor_error(name, "'dtype' must be a string, got " + show(*it));
    info.dtype = it->get<std::string>();
    std::optional<ElementType> type = element_type_from_dtype(info.dtype);
    if (!type)
      return error("unsupported dtype '" + info.dtype + "' for tensor '" + name + "' (supported: " + supported_dtypes() + ")");
    info.type = *type;
    return Status::Ok();
  }

  StatusOr<std::vector<int64_t>> read_shape(const std::string& name, const json& entry) const {
    auto it = entry.find("shape");
    if (it == entry.end()) return tensor_error(name, "missing key 'shape'");
    if (!it->is_array()) return tensor_error(name, "'shape' must be a list of non-negative integers, got " + show(*it));
    std::vector<int64_t> shape;
    // Ingot's limits: a tensor of more dimensions, or a dimension of more entries, is no model's
    // (an empty tensor, with a 0 in its shape, is otherwise not bounded by the file size).
    constexpr size_t kMaxRank = 8;
    constexpr uint64_t kMaxDim = uint64_t{1} << 32;
    if (it->size() > kMaxRank)
      return tensor_error(name, "shape has " + std::to_string(it->size()) + " dimensions, more than the " +
                                    std::to_string(kMaxRank) + " Ingot accepts");
    for (size_t i = 0; i < it->size(); ++i) {
      const json& d = (*it)[i];
      if (!d.is_number_unsigned() || d.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        return tensor_error(name, "shape entry " + std::to_string(i) + " is " + show(d) + ", must be a non-negative integer");
      if (d.get<uint64_t>() > kMaxDim)
        return tensor_error(name, "shape entry " + std::to_string(i) + " = " + show(d) + " is more than the " +
                                      std::to_string(kMaxDim) + " entries per dimension Ingot accepts");
      shape.push_back(static_cast<int64_t>(d.get<uint64_t>()));
    }
    return shape;
  }

  StatusOr<uint64_t> expected_bytes(const SafetensorsTensorInfo& info) const {
    const bool empty = std::find(info.shape.begin(), info.shape.end(), 0) != info.shape.end();
    int64_t numel = 1;
    for (int64_t d : info.shape) {
      if (empty) {
        numel = 0;
        break;
      }
      if (__builtin_mul_overflow(numel, d, &numel))
        return tensor_error(info.name, "shape " + dims_str(info.shape) + " has too many elements");
    }
    StatusOr<int64_t> bytes = storage_bytes(info.type, numel);
    if (!bytes.ok()) return tensor_error(info.name, "shape " + dims_str(info.shape) + " is too large: " + bytes.message());
    return static_cast<uint64_t>(*bytes);
  }

  Status read_offsets(const std::string& name, const json& entry, SafetensorsTensorInfo& info) const {
    auto it = entry.find("data_offsets");
    if (it == entry.end()) return tensor_error(name, "missing key 'data_offsets'");
    if (!it->is_array() || it->size() != 2 || !(*it)[0].is_number_unsigned() || !(*it)[1].is_number_unsigned())
      return tensor_error(name, "'data_offsets' must be [begin, end] with non-negative integers, got " + show(*it));
    const uint64_t begin = (*it)[0].get<uint64_t>(), end = (*it)[1].get<uint64_t>();
    if (begin > end) return tensor_error(name, "data_offsets " + offsets_str(begin, end) + ": begin is after end");
    if (end > data_bytes_)
      return tensor_error(name, "data_offsets " + offsets_str(begin, end) + " run past the end of the " +
                                    std::to_string(data_bytes_) + "-byte data section");
    INGOT_ASSIGN_OR_RETURN(uint64_t bytes, expected_bytes(info));
    if (end - begin != bytes)
      return tensor_error(name, "data_offsets " + offsets_str(begin, end) + " hold " + std::to_string(end - begin) +
                                    " bytes but " + info.dtype + " " + dims_str(info.shape) + " needs " +
                                    std::to_string(bytes));
    info.offset = out_->data_offset_ + begin;  // no overflow: end <= file size
    info.bytes = bytes;
    return Status::Ok();
  }

  // Empty tensors occupy no bytes and may share an offset with anything.
  Status check_no_overlap() const {
    std::vector<const SafetensorsTensorInfo*> by_offset;
    for (const auto& t : out_->tensors_)
      if (t.bytes > 0) by_offset.push_back(&t);
    std::sort(by_offset.begin(), by_offset.end(),
              [](const auto* a, const auto* b) { return a->offset != b->offset ? a->offset < b->offset : a->name < b->name; });
    for (size_t i = 1; i < by_offset.size(); ++i) {
      const auto* prev = by_offset[i - 1];
      const auto* cur = by_offset[i];
      if (cur->offset < prev->offset + prev->bytes) {
        const uint64_t base = out_->data_offset_;
        return error("tensors '" + prev->name + "' " + offsets_str(prev->offset - base, prev->offset - base + prev->bytes) +
                     " and '" + cur->name + "' " + offsets_str(cur->offset - base, cur->offset - base + cur->bytes) +
                     " overlap");
      }
    }
    return Status::Ok();
  }

  std::unique_ptr<SafetensorsFile> out_;
  uint64_t data_bytes_ = 0;
};

StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::open(const std::string& path) {
  INGOT_ASSIGN_OR_RETURN(std::shared_ptr<MappedFile> file, MappedFile::open(path));
  return parse(std::move(file));
}

StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::parse(std::shared_ptr<MappedFile> file) {
  INGOT_ASSERT(file != nullptr, "SafetensorsFile::parse needs a file");
  return SafetensorsHeaderReader(std::move(file)).run();
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  out.reserve(tensors_.size());
  for (const auto& t : tensors_) out.push_back(t.name);
  return out;
}

const SafetensorsTensorInfo* SafetensorsFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

StatusOr<std::shared_ptr<const Tensor>> SafetensorsFile::tensor(const std::string& name) const {
  const SafetensorsTensorInfo* info = find(name);
  if (!info) return Status::Error(path() + ": no tensor named '" + name + "'");
  const uint8_t* data = file_->data() + info->offset;
  const auto elem_bytes = static_cast<uintptr_t>(type_info(info->type).block_bytes);
  std::shared_ptr<const Buffer> buffer;
  if (reinterpret_cast<uintptr_t>(data) % elem_bytes == 0) {
    buffer = Buffer::view(data, info->bytes, file_);
  } else {
    // Misaligned (only in hand-made files): copy, so that no reader casts a misaligned pointer.
    std::shared_ptr<Buffer> copy = Buffer::allocate(info->bytes);
    if (info->bytes > 0) std::memcpy(copy->mutable_data(), data, info->bytes);
    buffer = std::move(copy);
  }
  StatusOr<Tensor> t = Tensor::from_buffer(info->type, info->shape, std::move(buffer));
  if (!t.ok()) return t.status().with_context(path() + ": tensor '" + name + "'");
  return std::make_shared<const Tensor>(std::move(t).value());
}

// --- SafetensorsCheckpoint -------------------------------------------------------------------

StatusOr<std::unique_ptr<SafetensorsCheckpoint>> SafetensorsCheckpoint::open_folder(const std::string& dir) {
  const std::string single = hf::join_path(dir, kSingleFile);
  if (hf::file_exists(single)) return open_file(single);
  const std::string index = hf::join_path(dir, kIndexFile);
  if (hf::file_exists(index)) return open_index(index);
  return Status::Error(dir + ": no " + kSingleFile + " or " + kIndexFile);
}

StatusOr<std::unique_ptr<SafetensorsCheckpoint>> SafetensorsCheckpoint::open_file(const std::string& path) {
  INGOT_ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsFile> file, SafetensorsFile::open(path));
  std::unique_ptr<SafetensorsCheckpoint> ckpt(new SafetensorsCheckpoint());
  for (const auto& t : file->tensors()) ckpt->shard_of_[t.name] = 0;
  ckpt->source_ = path;
  ckpt->metadata_ = file->metadata();
  ckpt->shards_.push_back(std::move(file));
  return ckpt;
}

StatusOr<std::unique_ptr<SafetensorsCheckpoint>> SafetensorsCheckpoint::open_index(const std::string& index_path) {
  INGOT_ASSIGN_OR_RETURN(std::string text, hf::read_file(index_path));
  return parse_index(text, index_path, dirname_of(index_path));
}

namespace {

// A shard must be a plain file name beside the index: no folders, so no escaping it.
bool is_plain_file_name(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos &&
         name.find('\\') == std::string::npos && name.find('\0') == std::string::npos;
}

struct IndexContents {
  std::map<std::string, std::string> metadata;
  std::map<std::string, std::vector<std::string>> tensors_of_shard;  // shard file -> tensor names
};

StatusOr<IndexContents> read_index_json(std::string_view text, const std::string& index_path) {
  INGOT_ASSIGN_OR_RETURN(json root, hf::parse_json(text, index_path, /*reject_duplicate_keys=*/true));
  auto error = [&](const std::string& m) { return Status::Error(index_path + ": " + m); };
  if (!root.is_object()) return error("not a JSON object (got " + hf::json_type_name(root) + ")");
  IndexContents out;
  auto meta = root.find("metadata");
  if (meta != root.end() && !meta->is_null()) {
    if (!meta->is_object()) return error("'metadata' must be an object, got " + hf::json_type_name(*meta));
    for (const auto& [k, v] : meta->items()) out.metadata[k] = v.is_string() ? v.get<std::string>() : v.dump();
  }
  auto map = root.find("weight_map");
  if (map == root.end()) return error("missing key 'weight_map'");
  if (!map->is_object()) return error("'weight_map' must be an object, got " + hf::json_type_name(*map));
  if (map->empty()) return error("'weight_map' is empty");
  for (const auto& [tensor, shard] : map->items()) {
    if (!shard.is_string())
      return error("weight_map: tensor '" + tensor + "' must map to a shard file name, got " + hf::json_type_name(shard));
    const std::string name = shard.get<std::string>();
    if (!is_plain_file_name(name))
      return error("weight_map: tensor '" + tensor + "': shard '" + name + "' is not a file name in the index's folder");
    out.tensors_of_shard[name].push_back(tensor);
  }
  return out;
}

}  // namespace

StatusOr<std::unique_ptr<SafetensorsCheckpoint>> SafetensorsCheckpoint::parse_index(std::string_view text,
                                                                                     const std::string& index_path,
                                                                                     const std::string& dir) {
  IndexContents index;
  try {
    INGOT_ASSIGN_OR_RETURN(index, read_index_json(text, index_path));
  } catch (const std::exception& e) {  // types are checked before access; a safety net
    return Status::Error(index_path + ": unexpected JSON content: " + e.what());
  }
  std::unique_ptr<SafetensorsCheckpoint> ckpt(new SafetensorsCheckpoint());
  ckpt->source_ = index_path;
  ckpt->metadata_ = std::move(index.metadata);
  for (const auto& [shard_name, tensors] : index.tensors_of_shard) {
    StatusOr<std::unique_ptr<SafetensorsFile>> shard = SafetensorsFile::open(hf::join_path(dir, shard_name));
    if (!shard.ok()) return shard.status().with_context(index_path + ": shard '" + shard_name + "'");
    for (const std::string& t : tensors) {
      if (!(*shard)->find(t))
        return Status::Error(index_path + ": tensor '" + t + "' is listed in shard '" + shard_name +
                             "', which does not contain it");
      ckpt->shard_of_[t] = ckpt->shards_.size();
    }
    ckpt->shards_.push_back(std::move(shard).value());
  }
  return ckpt;
}

std::vector<std::string> SafetensorsCheckpoint::names() const {
  std::vector<std::string> out;
  out.reserve(shard_of_.size());
  for (const auto& [name, shard] : shard_of_) out.push_back(name);
  return out;
}

const SafetensorsTensorInfo* SafetensorsCheckpoint::find(const std::string& name) const {
  auto it = shard_of_.find(name);
  return it == shard_of_.end() ? nullptr : shards_[it->second]->find(name);
}

StatusOr<std::shared_ptr<const Tensor>> SafetensorsCheckpoint::tensor(const std::string& name) const {
  auto it = shard_of_.find(name);
  if (it == shard_of_.end()) return Status::Error(source_ + ": no tensor named '" + name + "'");
  return shards_[it->second]->tensor(name);
}

}  // namespace ingot
