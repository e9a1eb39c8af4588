// llama.cpp's names for the files of a model split by gguf-split: PREFIX-00002-of-00005.gguf is
// the second of five. Shared by the GGUF reader (frontend/gguf.cpp), which opens the files, and
// `ingot run`'s bundle cache, which only needs their names (it links no frontend).
#pragma once

#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>

namespace ingot {

// File `no` (from 0) of `count`: PREFIX-0000{no+1}-of-0000{count}.gguf.
inline std::string split_file_path(const std::string& prefix, int64_t no, int64_t count) {
  char postfix[48];
  std::snprintf(postfix, sizeof(postfix), "-%05lld-of-%05lld.gguf", static_cast<long long>(no + 1), static_cast<long long>(count));
  return prefix + postfix;
}

// PREFIX when `path` is named as file `no` of `count`, else nothing.
inline std::optional<std::string> split_file_prefix(const std::string& path, int64_t no, int64_t count) {
  const std::string postfix = split_file_path("", no, count);
  if (path.size() <= postfix.size() || path.compare(path.size() - postfix.size(), postfix.size(), postfix) != 0) return std::nullopt;
  return path.substr(0, path.size() - postfix.size());
}

// N when `path` is named as the first file of N > 1 (PREFIX-00001-of-N.gguf, N in five digits), else 0.
inline int64_t split_file_count_from_name(const std::string& path) {
  const std::string first = "-00001-of-";
  const size_t tail = first.size() + 5 + 5;  // "-00001-of-" NNNNN ".gguf"
  if (path.size() <= tail || path.compare(path.size() - tail, first.size(), first) != 0 ||
      path.compare(path.size() - 5, 5, ".gguf") != 0)
    return 0;
  int64_t n = 0;
  for (size_t i = path.size() - 10; i < path.size() - 5; ++i) {
    if (path[i] < '0' || path[i] > '9') return 0;
    n = n * 10 + (path[i] - '0');
  }
  return n > 1 ? n : 0;
}

}  // namespace ingot
