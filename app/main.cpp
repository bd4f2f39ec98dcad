// podflow's entry point: the command line in cli.cpp does the work.
#include <sys/resource.h>

#include "app/cli.hpp"

namespace {

// Each pod a run watches holds a log stream open; the usual soft limit of 1,024 descriptors would
// cap one engine near a thousand pods, so take what the hard limit allows.
void raise_open_file_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &limit);
  }
}

}  // namespace

int main(int argc, char** argv) {
  raise_open_file_limit();
  return podflow::app::run_cli(argc, argv);
}
