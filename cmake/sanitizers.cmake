# PODFLOW_SANITIZE=address builds with ASan+UBSan, =thread with TSan; applied to every target.
if(PODFLOW_SANITIZE STREQUAL "address")
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
elseif(PODFLOW_SANITIZE STREQUAL "thread")
  # -Wno-tsan: GCC 12 warns that Asio's atomic_thread_fence is not instrumented; TSan still sees the
  # surrounding atomics, and -Werror must not turn that note into a failed build.
  add_compile_options(-fsanitize=thread -fno-omit-frame-pointer -Wno-tsan)
  add_link_options(-fsanitize=thread)
elseif(PODFLOW_SANITIZE)
  message(FATAL_ERROR "PODFLOW_SANITIZE must be address, thread or empty, not '${PODFLOW_SANITIZE}'")
endif()
