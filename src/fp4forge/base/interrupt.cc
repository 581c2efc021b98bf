#include "fp4forge/base/interrupt.h"

#include "fp4forge/base/error.h"

namespace fp4forge {

namespace {

volatile std::sig_atomic_t g_signal = 0;

void OnSignal(int signal) { g_signal = signal; }

}  // namespace

InterruptScope::InterruptScope() {
  g_signal = 0;
  struct sigaction action {};
  action.sa_handler = OnSignal;
  action.sa_flags = SA_RESETHAND;  // the second signal takes the default action
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, &old_int_);
  sigaction(SIGTERM, &action, &old_term_);
}

InterruptScope::~InterruptScope() {
  sigaction(SIGINT, &old_int_, nullptr);
  sigaction(SIGTERM, &old_term_, nullptr);
}

void ThrowIfInterrupted() {
  if (g_signal != 0) {
    Fail(ErrorCode::kInterrupted, "stopped by {}; the output was not written",
         g_signal == SIGINT ? "Ctrl-C (SIGINT)" : "SIGTERM");
  }
}

}  // namespace fp4forge
