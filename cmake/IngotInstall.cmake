# `cmake --install BUILD --prefix P` (docs/packaging.md):
#   P/bin/ingot, P/bin/ingotc                      the runtime's and the compiler's command lines
#   P/lib/libingot.so -> .so.0 -> .so.0.1.0        the runtime, C API only (SONAME libingot.so.0)
#   P/include/ingot/ingot.h                        its header: #include <ingot/ingot.h>
#   P/lib/pkgconfig/ingot.pc                       pkg-config --cflags --libs ingot
#   P/lib/cmake/ingot/ingotConfig.cmake (+Version) find_package(ingot): ingot::ingot
#   P/lib/python3.X/dist-packages/ingot.*.so       the Python module, when built (python/)
# Every installed file finds the others relative to itself: the prefix may move (or be DESTDIR).
include(CMakePackageConfigHelpers)

# ingotc keeps the run path to LLVM's and MLIR's libraries (/usr/lib/llvm-19/lib); ingot needs none.
set_target_properties(ingotc PROPERTIES INSTALL_RPATH_USE_LINK_PATH TRUE)
install(TARGETS ingot ingotc RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS ingot_shared EXPORT ingotTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(FILES ${PROJECT_SOURCE_DIR}/runtime/ingot.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/ingot)

set(INGOT_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/ingot)
install(EXPORT ingotTargets NAMESPACE ingot:: DESTINATION ${INGOT_CMAKE_DIR})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/ingotConfig.cmake.in
  ${CMAKE_BINARY_DIR}/package/ingotConfig.cmake
  INSTALL_DESTINATION ${INGOT_CMAKE_DIR}
  PATH_VARS CMAKE_INSTALL_INCLUDEDIR)
# As the SONAME: the C API grows without breaking its ABI (parameter structs carry their size); a
# break bumps the major version, the SONAME's and this file's.
write_basic_package_version_file(${CMAKE_BINARY_DIR}/package/ingotConfigVersion.cmake
  COMPATIBILITY SameMajorVersion)
install(FILES ${CMAKE_BINARY_DIR}/package/ingotConfig.cmake ${CMAKE_BINARY_DIR}/package/ingotConfigVersion.cmake
  DESTINATION ${INGOT_CMAKE_DIR})

# pkg-config: the prefix as a path relative to the .pc file's folder (${pcfiledir}).
file(RELATIVE_PATH INGOT_PC_UP /prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig /prefix)
string(REGEX REPLACE "/$" "" INGOT_PC_UP "${INGOT_PC_UP}")
configure_file(${PROJECT_SOURCE_DIR}/cmake/ingot.pc.in ${CMAKE_BINARY_DIR}/package/ingot.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/package/ingot.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
