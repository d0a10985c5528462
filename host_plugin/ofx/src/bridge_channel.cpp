// Bridge process management and the framed socket protocol (see bridge_channel.h for the why).
#include "bridge_channel.h"

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

#ifndef VQEDIT_BUILD_PYTHON
#define VQEDIT_BUILD_PYTHON "python3"
#endif
#ifndef VQEDIT_SOURCE_ROOT
#define VQEDIT_SOURCE_ROOT ""
#endif

extern char **environ;

namespace vqedit {

namespace {
using Clock = std::chrono::steady_clock;

double seconds_left(Clock::time_point deadline) {
  return std::chrono::duration<double>(deadline - Clock::now()).count();
}

// Wait for `events` on fd until the deadline; false on timeout (err says so) or poll error.
bool wait_fd(int fd, short events, Clock::time_point deadline, std::string &err) {
  for (;;) {
    double left = seconds_left(deadline);
    if (left <= 0) {
      err = "timed out";
      return false;
    }
    pollfd p{fd, events, 0};
    int ms = static_cast<int>(left * 1000.0) + 1;
    int r = ::poll(&p, 1, ms);
    if (r > 0) return true;
    if (r < 0 && errno != EINTR) {
      err = std::string("poll: ") + std::strerror(errno);
      return false;
    }
  }
}

bool send_all(int fd, const char *data, size_t n, int shm_fd, Clock::time_point deadline, std::string &err) {
  bool fd_sent = shm_fd < 0;
  while (n > 0) {
    if (!wait_fd(fd, POLLOUT, deadline, err)) return false;
    ssize_t w;
    if (!fd_sent) {
      // the shared-memory descriptor rides on the first byte(s) of the frame
      iovec iov{const_cast<char *>(data), n};
      alignas(cmsghdr) char ctrl[CMSG_SPACE(sizeof(int))] = {};
      msghdr msg{};
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = ctrl;
      msg.msg_controllen = sizeof(ctrl);
      cmsghdr *c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int));
      std::memcpy(CMSG_DATA(c), &shm_fd, sizeof(int));
      w = ::sendmsg(fd, &msg, MSG_NOSIGNAL);
      if (w > 0) fd_sent = true;
    } else {
      w = ::send(fd, data, n, MSG_NOSIGNAL);
    }
    if (w < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      err = std::string("send: ") + std::strerror(errno);
      return false;
    }
    data += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

bool recv_all(int fd, char *data, size_t n, Clock::time_point deadline, std::string &err) {
  while (n > 0) {
    if (!wait_fd(fd, POLLIN, deadline, err)) return false;
    ssize_t r = ::recv(fd, data, n, 0);
    if (r == 0) {
      err = "the bridge process closed the channel";
      return false;
    }
    if (r < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      err = std::string("recv: ") + std::strerror(errno);
      return false;
    }
    data += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}
}  // namespace

std::string bridge_python() {
  const char *env = std::getenv("VQEDIT_PYTHON");
  return (env && *env) ? std::string(env) : std::string(VQEDIT_BUILD_PYTHON);
}

// --- shared memory ---------------------------------------------------------------------------------
SharedBuffer::~SharedBuffer() { release(); }

void SharedBuffer::release() {
  if (data_) ::munmap(data_, size_);
  if (fd_ >= 0) ::close(fd_);
  data_ = nullptr;
  fd_ = -1;
  size_ = 0;
}

bool SharedBuffer::reserve(size_t bytes, std::string &err) {
  if (bytes <= size_ && data_) return true;
  release();
  size_t size = (bytes + (1u << 20) - 1) & ~((size_t(1) << 20) - 1);  // whole MiB: fewer regrowths
  fd_ = ::memfd_create("vqedit-ofx", MFD_CLOEXEC);
  if (fd_ < 0 || ::ftruncate(fd_, static_cast<off_t>(size)) != 0) {
    err = std::string("shared memory: ") + std::strerror(errno);
    release();
    return false;
  }
  void *p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
  if (p == MAP_FAILED) {
    err = std::string("shared memory map: ") + std::strerror(errno);
    release();
    return false;
  }
  data_ = static_cast<unsigned char *>(p);
  size_ = size;
  return true;
}

// --- the process -----------------------------------------------------------------------------------
bool BridgeChannel::alive() {
  if (pid_ <= 0) return false;
  int status = 0;
  pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == 0) return true;
  pid_ = -1;  // exited (crashed, killed or idled out): reaped now
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  return false;
}

bool BridgeChannel::start(std::string &err) {
  stop();
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) {
    err = std::string("socketpair: ") + std::strerror(errno);
    return false;
  }
  ::fcntl(sv[0], F_SETFD, FD_CLOEXEC);  // the host's end stays in the host
  std::string python = bridge_python();
  std::string fd_arg = std::to_string(sv[1]);
  const char *idle = std::getenv("VQEDIT_OFX_IDLE");
  std::string idle_arg = (idle && *idle) ? idle : "900";
  std::vector<std::string> args = {python, "-m", "host_plugin.ofx.bridge", "--fd", fd_arg, "--idle", idle_arg};
  std::vector<char *> argv;
  for (auto &a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  // environment: the host's, with the vqedit source tree first on PYTHONPATH
  std::vector<std::string> env;
  std::string root = VQEDIT_SOURCE_ROOT;
  bool had_path = false;
  for (char **e = environ; e && *e; ++e) {
    std::string kv(*e);
    if (kv.rfind("PYTHONPATH=", 0) == 0 && !root.empty()) {
      kv = "PYTHONPATH=" + root + ":" + kv.substr(11);
      had_path = true;
    }
    if (kv.rfind("PYTHONHOME=", 0) == 0) continue;  // the host's embedded Python home is not ours
    env.push_back(kv);
  }
  if (!had_path && !root.empty()) env.push_back("PYTHONPATH=" + root);
  std::vector<char *> envp;
  for (auto &kv : env) envp.push_back(kv.data());
  envp.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  pid_t pid = -1;
  int rc = ::posix_spawnp(&pid, python.c_str(), &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  ::close(sv[1]);
  if (rc != 0) {
    ::close(sv[0]);
    err = "cannot start the bridge with " + python + ": " + std::strerror(rc) + " (set VQEDIT_PYTHON)";
    return false;
  }
  pid_ = pid;
  fd_ = sv[0];
  return true;
}

void BridgeChannel::stop() {
  if (fd_ >= 0) ::close(fd_);  // EOF: the bridge exits on its own
  fd_ = -1;
  if (pid_ <= 0) return;
  for (int i = 0; i < 100; ++i) {  // up to 2 s of grace
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) != 0) {
      pid_ = -1;
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::kill(pid_, SIGKILL);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
}

bool BridgeChannel::exchange(const std::string &body, int shm_fd, double timeout_s, std::string &reply,
                             std::string &err, bool &broken, const Overlap *overlap) {
  auto deadline = Clock::now() + std::chrono::milliseconds(static_cast<long>(timeout_s * 1000.0));
  auto frame_of = [](const std::string &text) {
    uint32_t n = static_cast<uint32_t>(text.size());
    char head[4] = {static_cast<char>(n), static_cast<char>(n >> 8), static_cast<char>(n >> 16),
                    static_cast<char>(n >> 24)};
    return std::string(head, 4) + text;
  };
  std::string frame = frame_of(body);
  broken = false;
  auto fail = [&] {
    broken = err != "timed out";
    return false;
  };
  if (!send_all(fd_, frame.data(), frame.size(), shm_fd, deadline, err)) return fail();
  if (overlap && overlap->during) overlap->during();
  for (;;) {
    unsigned char head[4];
    if (!recv_all(fd_, reinterpret_cast<char *>(head), 4, deadline, err)) return fail();
    uint32_t len = head[0] | (head[1] << 8) | (head[2] << 16) | (uint32_t(head[3]) << 24);
    if (len > (1u << 24)) {
      err = "bad reply frame";
      broken = true;
      return false;
    }
    reply.assign(len, '\0');
    if (!recv_all(fd_, reply.data(), len, deadline, err)) return fail();
    if (reply.rfind("need ", 0) != 0) return true;
    if (!overlap || !overlap->on_need || !overlap->on_need(reply)) {
      err = "the bridge asked for pixels it cannot have: " + reply;
      broken = true;
      return false;
    }
    const char ready = 'R';
    if (!send_all(fd_, &ready, 1, -1, deadline, err)) return fail();
  }
}

bool BridgeChannel::handshake(std::string &err) {
  // a fresh bridge answers a ping once Python and host_plugin are imported; a broken environment (no
  // numpy, no host_plugin on the path) fails here in seconds, not after a render's long timeout
  const char *env = std::getenv("VQEDIT_OFX_START_TIMEOUT");
  double limit = (env && *env) ? std::atof(env) : 30.0;
  std::string reply;
  bool broken = false;
  if (exchange("{\"op\":\"ping\"}", -1, limit, reply, err, broken, nullptr) && reply.rfind("ok", 0) == 0) return true;
  ::kill(pid_, SIGKILL);
  stop();
  err = "the bridge process (" + bridge_python() + " -m host_plugin.ofx.bridge) " +
        (broken ? std::string("exited at start") : "did not start within " + std::to_string(static_cast<int>(limit)) + " s") +
        "; its error is on the host's stderr (check VQEDIT_PYTHON and that it can import host_plugin and numpy)";
  return false;
}

bool BridgeChannel::request(const std::string &body, int shm_fd, double timeout_s, std::string &reply,
                            std::string &err, const Overlap *overlap) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (!alive() && !(start(err) && handshake(err))) return false;
    bool broken = false;
    if (exchange(body, shm_fd, timeout_s, reply, err, broken, overlap)) return true;
    // a timed-out bridge may still answer later and desynchronise the stream: never reuse it
    ::kill(pid_, SIGKILL);
    stop();
    if (!broken) {
      err = "the bridge process did not answer within " + std::to_string(static_cast<int>(timeout_s)) + " s";
      return false;
    }
  }
  err = "the bridge process failed twice: " + err + " (see its messages on the host's stderr)";
  return false;
}

}  // namespace vqedit
