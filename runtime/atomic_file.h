// Output files written atomically and safely: under a temporary name beside the target (created
// with O_EXCL) and renamed into place on commit, so that a failed or interrupted write never leaves
// a partial output. Used by every writer of output files: bundles (codegen/bundle_writer.cpp),
// GGUF (`ingotc synth`), `ingotc` dumps and reports, and saved sessions.
//
// The target must be absent or a regular, writable file: Ingot refuses to replace a symbolic link,
// a FIFO, a device, a socket, a directory or a read-only file, and a file that is one of the
// command's inputs (the same device and inode). A process killed by SIGINT, SIGTERM, SIGHUP or
// SIGXFSZ while writing removes its temporary files before it dies (a small async-signal-safe
// registry of their paths; the handler unlinks them and re-raises the signal with the previous
// disposition). SIGKILL cannot be caught: a temporary `OUT.tmp-PID-N` may then remain.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace ingot {

// Ok when `path` may be created or replaced (see above); else an error naming the path and why.
Status check_output_path(const std::string& path, const std::vector<std::string>& inputs = {});

class AtomicFile {
 public:
  // Checks `path` (check_output_path), then creates its temporary.
  static StatusOr<std::unique_ptr<AtomicFile>> create(const std::string& path, const std::vector<std::string>& inputs = {});
  // Uncommitted: closes and removes the temporary.
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  int fd() const { return fd_; }
  const std::string& path() const { return path_; }
  const std::string& temp_path() const { return tmp_; }
  uint64_t written() const { return written_; }

  // Appends (retrying short writes and EINTR).
  Status write(const void* data, size_t n);
  Status write(std::string_view s) { return write(s.data(), s.size()); }
  // Closes the temporary, checks the target again, and renames the temporary over it.
  Status commit();

 private:
  AtomicFile(std::string path, std::string tmp, int fd, int slot);
  std::string path_, tmp_;
  std::vector<std::string> inputs_;
  int fd_ = -1;
  int slot_ = -1;  // in the signal registry; -1: not registered
  uint64_t written_ = 0;
  bool committed_ = false;
};

// The whole of `data` to `path`, atomically.
Status write_file_atomic(const std::string& path, std::string_view data, const std::vector<std::string>& inputs = {});

// For tests: the number of temporaries registered for removal on a signal.
int atomic_file_registered_temporaries();

}  // namespace ingot
