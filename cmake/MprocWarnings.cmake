# Warnings of DESIGN.md section 9, for gcc and clang (mingw-w64 included),
# and their MSVC counterparts. Every flag here depends on the compiler.
function(mproc_target_warnings target)
  if(MSVC)
    # C11 atomics (src/common/atomics.h): Visual Studio 2022 17.5 or later;
    # CMAKE_C_STANDARD 11 gives /std:c11. Not built here: no MSVC
    # (scripts/msvc-check.sh checks the sources in clang's MSVC mode).
    target_compile_options(${target} PRIVATE /W4 /experimental:c11atomics)
    if(MPROC_WARNINGS_AS_ERRORS)
      target_compile_options(${target} PRIVATE /WX)
    endif()
    return()
  endif()
  target_compile_options(${target} PRIVATE
    -Wall -Wextra -Wpedantic -Wconversion -Wsign-conversion
    -Wstrict-prototypes -Wmissing-prototypes -Wshadow -Wformat=2
    -Wundef -Wcast-qual -Wvla)
  if(MPROC_WARNINGS_AS_ERRORS)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
