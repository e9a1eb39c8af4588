// The atomic writer (runtime/atomic_file.h): what it refuses to replace, O_EXCL temporaries, and
// temporaries removed when the process is killed by a signal mid-write.
#include <gtest/gtest.h>

#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/sysmacros.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <fstream>
#include <string>
#include <vector>

#include "runtime/atomic_file.h"
#include "tests/common/files.h"

namespace ingot {
namespace {

using ::ingot::testing::make_temp_dir;
using ::ingot::testing::read_file;
using ::ingot::testing::list_dir;

TEST(AtomicFile, WritesAndReplacesRegularFiles) {
  const std::string dir = make_temp_dir("atomic_ok");
  const std::string out = dir + "/out.bin";
  ASSERT_TRUE(write_file_atomic(out, "first").ok());
  EXPECT_EQ(read_file(out), "first");
  ::chmod(out.c_str(), 0640);
  ASSERT_TRUE(write_file_atomic(out, "second").ok());
  EXPECT_EQ(read_file(out), "second");
  struct stat st {};
  ASSERT_EQ(::stat(out.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0640u) << "the replaced file keeps its permissions";
  EXPECT_EQ(list_dir(dir), (std::vector<std::string>{"out.bin"}));
}

TEST(AtomicFile, RefusesWhatIsNotARegularWritableFile) {
  const std::string dir = make_temp_dir("atomic_refuse");
  std::ofstream(dir + "/target") << "keep";
  ASSERT_EQ(::symlink((dir + "/target").c_str(), (dir + "/link").c_str()), 0);
  ASSERT_EQ(::symlink((dir + "/nowhere").c_str(), (dir + "/dangling").c_str()), 0);
  ASSERT_EQ(::mkfifo((dir + "/fifo").c_str(), 0644), 0);
  ASSERT_EQ(::mkdir((dir + "/sub").c_str(), 0755), 0);
  std::ofstream(dir + "/ro") << "read-only";
  ASSERT_EQ(::chmod((dir + "/ro").c_str(), 0444), 0);
  struct Case {
    std::string name, expected;
  };
  const std::vector<Case> cases = {
      {"link", "is a symbolic link; Ingot writes its outputs only to new or regular files and does not replace it"},
      {"dangling", "is a symbolic link"},
      {"fifo", "is a FIFO (named pipe)"},
      {"sub", "is a directory"},
      {"ro", "is read-only; Ingot does not replace it"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string path = dir + "/" + c.name;
    Status st = write_file_atomic(path, "new");
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.message().rfind(path + ": " + c.expected, 0), 0u) << st.message();
  }
  EXPECT_EQ(read_file(dir + "/target"), "keep");
  EXPECT_EQ(read_file(dir + "/ro"), "read-only");
  struct stat st {};
  EXPECT_EQ(::lstat((dir + "/link").c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  EXPECT_EQ(::lstat((dir + "/fifo").c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  EXPECT_NE(::lstat((dir + "/nowhere").c_str(), &st), 0) << "nothing created through the dangling link";
  // A device node, where the test may make one (root).
  if (::mknod((dir + "/null").c_str(), S_IFCHR | 0666, makedev(1, 3)) == 0) {
    Status dev = write_file_atomic(dir + "/null", "new");
    EXPECT_NE(dev.message().find("is a character device"), std::string::npos) << dev.message();
    EXPECT_EQ(::lstat((dir + "/null").c_str(), &st), 0);
    EXPECT_TRUE(S_ISCHR(st.st_mode));
  }
  for (const std::string& n : list_dir(dir)) EXPECT_EQ(n.find(".tmp-"), std::string::npos) << n;
}

TEST(AtomicFile, RefusesAnInputFile) {
  const std::string dir = make_temp_dir("atomic_input");
  const std::string in = dir + "/model.gguf";
  std::ofstream(in) << "weights";
  ASSERT_EQ(::link(in.c_str(), (dir + "/hard.gguf").c_str()), 0);
  Status st = write_file_atomic(in, "out", {in});
  EXPECT_EQ(st.message(), in + ": is the input file; write the output to another file");
  st = write_file_atomic(dir + "/hard.gguf", "out", {in});
  EXPECT_EQ(st.message(), dir + "/hard.gguf: is the input '" + in + "'; write the output to another file");
  EXPECT_EQ(read_file(in), "weights");
  EXPECT_TRUE(write_file_atomic(dir + "/other", "out", {in}).ok());
}

TEST(AtomicFile, TemporaryIsExclusiveAndRemovedWhenNotCommitted) {
  const std::string dir = make_temp_dir("atomic_tmp");
  const int before = atomic_file_registered_temporaries();
  {
    auto f = AtomicFile::create(dir + "/out");
    ASSERT_TRUE(f.ok()) << f.message();
    EXPECT_EQ(atomic_file_registered_temporaries(), before + 1);
    EXPECT_TRUE((*f)->write("partial").ok());
    EXPECT_EQ(list_dir(dir).size(), 1u);
    EXPECT_NE(list_dir(dir)[0].find("out.tmp-"), std::string::npos);
  }
  EXPECT_EQ(list_dir(dir), std::vector<std::string>{}) << "an uncommitted temporary is removed";
  EXPECT_EQ(atomic_file_registered_temporaries(), before);
}

// A child writes, then is killed by `sig` (from itself, or by a file size limit for SIGXFSZ); its
// temporary must be gone and it must have died of that signal.
void expect_killed_child_leaves_nothing(int sig) {
  const std::string dir = make_temp_dir("atomic_signal");
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto f = AtomicFile::create(dir + "/out");
    if (!f.ok()) ::_exit(3);
    if (!(*f)->write("some bytes").ok()) ::_exit(4);
    if (sig == SIGXFSZ) {
      struct rlimit lim {1 << 16, 1 << 16};
      ::setrlimit(RLIMIT_FSIZE, &lim);
      std::string chunk(1 << 20, 'x');
      (void)(*f)->write(chunk);  // crosses the limit: SIGXFSZ
    } else {
      ::raise(sig);
    }
    ::_exit(5);  // not reached if the signal killed us
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status)) << "exit status " << (WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  EXPECT_EQ(WTERMSIG(status), sig);
  EXPECT_EQ(list_dir(dir), std::vector<std::string>{}) << "the temporary was left behind";
}

TEST(AtomicFile, SigtermRemovesTheTemporary) { expect_killed_child_leaves_nothing(SIGTERM); }
TEST(AtomicFile, SigintRemovesTheTemporary) { expect_killed_child_leaves_nothing(SIGINT); }
TEST(AtomicFile, SigxfszRemovesTheTemporary) { expect_killed_child_leaves_nothing(SIGXFSZ); }

}  // namespace
}  // namespace ingot
