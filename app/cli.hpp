// The podflow command line.
#pragma once

namespace podflow::app {
int run_cli(int argc, char** argv);
}
