# Warning flags shared by every podflow target (never by third-party code).
add_library(podflow_warnings INTERFACE)
target_compile_options(podflow_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wsign-conversion -Wnon-virtual-dtor
  -Wold-style-cast -Woverloaded-virtual -Wimplicit-fallthrough
  $<$<BOOL:${PODFLOW_WERROR}>:-Werror>)
