#include "runtime/atomic_file.h"

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <mutex>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace ingot {
namespace {

std::string system_error(int err) { return std::strerror(err); }

// ---------------------------------------------------------------- the signal registry
//
// Fixed storage, so that the handler touches nothing but these arrays, lock-free atomics, unlink,
// sigaction and raise (all async-signal-safe). A slot is free (0), being filled (1) or live (2).

constexpr int kSlots = 64;
constexpr size_t kMaxPath = 4096;
constexpr int kSignals[] = {SIGINT, SIGTERM, SIGHUP, SIGXFSZ};

std::atomic<int> g_state[kSlots];
char g_paths[kSlots][kMaxPath];
struct sigaction g_previous[sizeof(kSignals) / sizeof(kSignals[0])];
std::atomic<bool> g_installed[sizeof(kSignals) / sizeof(kSignals[0])];
static_assert(std::atomic<int>::is_always_lock_free && std::atomic<bool>::is_always_lock_free);

extern "C" void remove_temporaries_and_reraise(int sig) {
  const int saved_errno = errno;
  for (int i = 0; i < kSlots; ++i)
    if (g_state[i].load(std::memory_order_acquire) == 2) ::unlink(g_paths[i]);
  for (size_t s = 0; s < sizeof(kSignals) / sizeof(kSignals[0]); ++s) {
    if (kSignals[s] != sig || !g_installed[s].load(std::memory_order_acquire)) continue;
    // The disposition from before ours (the default: terminate), then the signal again.
    ::sigaction(sig, &g_previous[s], nullptr);
    g_installed[s].store(false, std::memory_order_release);
    errno = saved_errno;
    ::raise(sig);
    return;
  }
  errno = saved_errno;
}

// Our handler for each signal whose disposition is the default; one the process ignores or
// handles itself is left alone.
void install_handlers() {
  static std::once_flag once;
  std::call_once(once, [] {
    for (size_t s = 0; s < sizeof(kSignals) / sizeof(kSignals[0]); ++s) {
      struct sigaction current {};
      if (::sigaction(kSignals[s], nullptr, &current) != 0) continue;
      if ((current.sa_flags & SA_SIGINFO) || current.sa_handler != SIG_DFL) continue;
      struct sigaction ours {};
      ours.sa_handler = remove_temporaries_and_reraise;
      sigemptyset(&ours.sa_mask);
      for (int other : kSignals) sigaddset(&ours.sa_mask, other);  // one handler at a time
      ours.sa_flags = 0;
      g_previous[s] = current;
      g_installed[s].store(true, std::memory_order_release);
      if (::sigaction(kSignals[s], &ours, nullptr) != 0) g_installed[s].store(false, std::memory_order_release);
    }
  });
}

// A slot holding `path`, or -1 (the registry is full or the path too long: the temporary is then
// still removed on errors, only not on signals).
int register_temporary(const std::string& path) {
  if (path.size() >= kMaxPath) return -1;
  install_handlers();
  for (int i = 0; i < kSlots; ++i) {
    int expected = 0;
    if (!g_state[i].compare_exchange_strong(expected, 1, std::memory_order_acq_rel)) continue;
    std::memcpy(g_paths[i], path.c_str(), path.size() + 1);
    g_state[i].store(2, std::memory_order_release);
    return i;
  }
  return -1;
}

void unregister_temporary(int slot) {
  if (slot >= 0) g_state[slot].store(0, std::memory_order_release);
}

const char* kind_of(mode_t mode) {
  if (S_ISLNK(mode)) return "a symbolic link";
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO (named pipe)";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

}  // namespace

Status check_output_path(const std::string& path, const std::vector<std::string>& inputs) {
  struct stat out {};
  if (::lstat(path.c_str(), &out) != 0) {
    if (errno == ENOENT) return Status::Ok();  // created; a missing folder fails then, with its message
    return Status::Error(StatusCode::io, path + ": cannot create file: " + system_error(errno));
  }
  if (!S_ISREG(out.st_mode))
    return Status::Error(StatusCode::invalid_argument,
                         path + ": is " + kind_of(out.st_mode) +
                             "; Ingot writes its outputs only to new or regular files and does not replace it");
  for (const std::string& input : inputs) {
    struct stat in {};
    if (::stat(input.c_str(), &in) == 0 && in.st_dev == out.st_dev && in.st_ino == out.st_ino)
      return Status::Error(StatusCode::invalid_argument,
                           path + ": is the input " + (input == path ? std::string("file") : "'" + input + "'") +
                               "; write the output to another file");
  }
  if ((out.st_mode & (S_IWUSR | S_IWGRP | S_IWOTH)) == 0 || ::access(path.c_str(), W_OK) != 0)
    return Status::Error(StatusCode::invalid_argument,
                         path + ": is read-only; Ingot does not replace it (remove it or make it writable first)");
  return Status::Ok();
}

AtomicFile::AtomicFile(std::string path, std::string tmp, int fd, int slot)
    : path_(std::move(path)), tmp_(std::move(tmp)), fd_(fd), slot_(slot) {}

StatusOr<std::unique_ptr<AtomicFile>> AtomicFile::create(const std::string& path, const std::vector<std::string>& inputs) {
  INGOT_RETURN_IF_ERROR(check_output_path(path, inputs));
  static std::atomic<uint64_t> counter{0};
  for (int attempt = 0; attempt < 100; ++attempt) {
    std::string tmp = path + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
    // Registered before it exists, so that no moment has the file without the registration.
    const int slot = register_temporary(tmp);
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0666);
    if (fd >= 0) {
      // A file being replaced keeps its permission bits.
      struct stat old {};
      if (::stat(path.c_str(), &old) == 0 && S_ISREG(old.st_mode)) (void)::fchmod(fd, old.st_mode & 07777);
      std::unique_ptr<AtomicFile> f(new AtomicFile(path, std::move(tmp), fd, slot));
      f->inputs_ = inputs;
      return f;
    }
    const int err = errno;
    unregister_temporary(slot);
    if (err != EEXIST) return Status::Error(StatusCode::io, path + ": cannot create file: " + system_error(err));
  }
  return Status::Error(StatusCode::io, path + ": cannot create a temporary file beside it");
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(tmp_.c_str());
  unregister_temporary(slot_);
}

Status AtomicFile::write(const void* data, size_t n) {
  const auto* p = static_cast<const uint8_t*>(data);
  while (n > 0) {
    const ssize_t w = ::write(fd_, p, std::min<size_t>(n, size_t{1} << 30));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return Status::Error(StatusCode::io, path_ + ": write failed: " + system_error(w < 0 ? errno : EIO));
    p += w;
    n -= static_cast<size_t>(w);
    written_ += static_cast<uint64_t>(w);
  }
  return Status::Ok();
}

// No fsync: it would cost seconds on large models and only guards against power loss.
Status AtomicFile::commit() {
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) return Status::Error(StatusCode::io, path_ + ": write failed: " + system_error(errno));
  // The target may have changed while we wrote (a symlink put in its place).
  INGOT_RETURN_IF_ERROR(check_output_path(path_, inputs_));
  if (::rename(tmp_.c_str(), path_.c_str()) != 0)
    return Status::Error(StatusCode::io, path_ + ": cannot replace file: " + system_error(errno));
  committed_ = true;
  unregister_temporary(slot_);
  slot_ = -1;
  return Status::Ok();
}

Status write_file_atomic(const std::string& path, std::string_view data, const std::vector<std::string>& inputs) {
  INGOT_ASSIGN_OR_RETURN(std::unique_ptr<AtomicFile> f, AtomicFile::create(path, inputs));
  INGOT_RETURN_IF_ERROR(f->write(data));
  return f->commit();
}

int atomic_file_registered_temporaries() {
  int n = 0;
  for (int i = 0; i < kSlots; ++i) n += g_state[i].load(std::memory_order_acquire) == 2;
  return n;
}

}  // namespace ingot
