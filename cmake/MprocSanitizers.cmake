# MPROC_SANITIZE=address,undefined or thread: applied to every target made
# after this point, the library included.
if(MPROC_SANITIZE)
  if(MSVC OR WIN32)
    message(FATAL_ERROR "mproc: MPROC_SANITIZE needs gcc or clang on POSIX")
  endif()
  set(_mproc_san "-fsanitize=${MPROC_SANITIZE}" -fno-omit-frame-pointer
      -fno-sanitize-recover=all)
  foreach(t mproc mproc_static)
    if(TARGET ${t})
      target_compile_options(${t} PRIVATE ${_mproc_san})
      target_link_options(${t} PUBLIC "-fsanitize=${MPROC_SANITIZE}")
    endif()
  endforeach()
  add_compile_options(${_mproc_san})
  add_link_options("-fsanitize=${MPROC_SANITIZE}")
endif()
