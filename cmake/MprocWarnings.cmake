# Warnings of DESIGN.md section 9, for gcc and clang (mingw-w64 included).
function(mproc_target_warnings target)
  if(MSVC)
    target_compile_options(${target} PRIVATE /W4)
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
