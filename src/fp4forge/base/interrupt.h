// Ctrl-C (SIGINT) and SIGTERM as a flag that a long job polls at safe points, so that it stops and
// removes what it had written instead of leaving a half-built output behind.
#pragma once

#include <csignal>

namespace fp4forge {

// While alive, the two signals only set the flag (and a second one ends the process at once);
// afterwards they do what they did before.
class InterruptScope {
 public:
  InterruptScope();
  ~InterruptScope();
  InterruptScope(const InterruptScope&) = delete;
  InterruptScope& operator=(const InterruptScope&) = delete;

 private:
  struct sigaction old_int_ {};
  struct sigaction old_term_ {};
};

// Throws Error(kInterrupted) once a signal has been caught in an InterruptScope.
void ThrowIfInterrupted();

}  // namespace fp4forge
