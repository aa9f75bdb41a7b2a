/*
 * Linked only into the portable prebuild (CMake option ARSEG_PORTABLE, scripts/prebuild.sh),
 * which carries libstdc++ and libav statically: it keeps the addon's glibc floor at 2.34 (the
 * pthread and dl symbols that moved into libc there, from the CUDA runtime, libstdc++ and
 * libav, set that floor) although the build machine's glibc is newer.
 */
#include <stdint.h>
#include <unistd.h> /* getentropy: glibc 2.25 */

/*
 * GCC 12's libstdc++.a, built against glibc 2.36, refers to arc4random (GLIBC_2.36) in
 * std::random_device; the addon never uses random_device, but that archive member comes in
 * with the copy-on-write std::string instantiations. This definition, hidden inside the addon,
 * satisfies the reference instead of glibc's.
 */
__attribute__((visibility("hidden"))) uint32_t arc4random(void) {
  uint32_t value = 0;
  while (getentropy(&value, sizeof value) != 0) {
  }
  return value;
}

/*
 * libav's hypot calls (display matrices, expression evaluation) would bind to hypot@GLIBC_2.35,
 * the version glibc 2.35 gave hypot when it dropped the SVID error-handling wrappers; the
 * computation is the same. The link wraps them (-Wl,--wrap=hypot) onto the original version.
 */
double arseg_hypot_glibc_2_2_5(double x, double y);
__asm__(".symver arseg_hypot_glibc_2_2_5, hypot@GLIBC_2.2.5");

__attribute__((visibility("hidden"))) double __wrap_hypot(double x, double y) { return arseg_hypot_glibc_2_2_5(x, y); }
