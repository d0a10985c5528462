// The plug-in's side of the bridge process: spawn, framing over a Unix socket pair, shared memory.
//
// Why a process: hosts embed their own Python, so the .ofx never loads libpython; a small Python
// process (host_plugin/ofx/bridge.py) runs EditNode + RenderClient instead. One bridge serves every
// instance of the plug-in in the host process. The socket pair's far end is inherited by the bridge
// only, so when the host exits (or unloads the plug-in) the bridge reads EOF and exits too.
//
// Framing, both ways: a 4-byte little-endian length, then that many bytes of UTF-8 (a JSON request; the
// reply is "ok ..." or "error <one line>"). Before its reply, a render may ask for pixels with a
// "need c0 r0 c1 r1" frame, answered by one 'R' byte once they are in shared memory: only the render's
// box of the Source crosses, and the Output's own copy of the Source overlaps the server's render. Pixels travel in one memfd shared-memory buffer whose file
// descriptor rides along with each request (SCM_RIGHTS), so nothing in the plug-in has a name to leak.
#pragma once

#include <functional>
#include <string>
#include <sys/types.h>

namespace vqedit {

class SharedBuffer {
 public:
  ~SharedBuffer();
  // At least `bytes` of mapped shared memory (grown by remapping; contents are not preserved).
  bool reserve(size_t bytes, std::string &err);
  unsigned char *data() const { return data_; }
  int fd() const { return fd_; }
  void release();

 private:
  int fd_ = -1;
  unsigned char *data_ = nullptr;
  size_t size_ = 0;
};

// Work the plug-in does while the bridge waits for the render server: `during` runs right after the
// request is sent; `on_need` answers the bridge's "need ..." frame (it fills the shared memory the bridge
// asks for; false = a malformed ask), after which the channel sends one 'R' byte and reads on. Both run
// again if the request is retried.
struct Overlap {
  std::function<void()> during;
  std::function<bool(const std::string &)> on_need;
};

class BridgeChannel {
 public:
  ~BridgeChannel() { stop(); }
  // One request/reply. Starts the bridge when it is not running (or died); a bridge that breaks the
  // channel mid-request is restarted and the request retried once. Every wait ends at `timeout_s`.
  bool request(const std::string &body, int shm_fd, double timeout_s, std::string &reply, std::string &err,
               const Overlap *overlap = nullptr);
  // Close the channel and reap the process (SIGKILL after a grace period); safe to call twice.
  void stop();
  bool running() { return alive(); }

 private:
  bool start(std::string &err);
  bool handshake(std::string &err);
  bool exchange(const std::string &body, int shm_fd, double timeout_s, std::string &reply, std::string &err,
                bool &broken, const Overlap *overlap);
  bool alive();
  int fd_ = -1;
  pid_t pid_ = -1;
};

// Which interpreter runs the bridge: $VQEDIT_PYTHON, else the one recorded at build time.
std::string bridge_python();

}  // namespace vqedit
