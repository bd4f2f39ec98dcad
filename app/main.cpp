// podflow's entry point.
#include "app/cli.hpp"

int main(int argc, char** argv) { return podflow::app::run_cli(argc, argv); }
