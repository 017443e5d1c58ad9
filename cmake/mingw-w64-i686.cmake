# Cross build for 32-bit Windows with mingw-w64: compiled (-Werror), not run
# (no 32-bit Wine here).
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR i686)
set(MPROC_MINGW_PREFIX i686-w64-mingw32)
set(CMAKE_C_COMPILER ${MPROC_MINGW_PREFIX}-gcc)
set(CMAKE_RC_COMPILER ${MPROC_MINGW_PREFIX}-windres)
set(CMAKE_FIND_ROOT_PATH /usr/${MPROC_MINGW_PREFIX})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
# Link the compiler's runtime statically, so the programs run under Wine
# without copying libgcc and winpthread DLLs beside them (-static-libgcc
# alone leaves winpthread a DLL; system DLLs stay dynamic either way).
set(CMAKE_EXE_LINKER_FLAGS_INIT "-static")
set(CMAKE_SHARED_LINKER_FLAGS_INIT "-static")
# No emulator: running it needs 32-bit Wine (the i686 mingw build only compiles).
