# `cmake --install`: the public headers under include/edifice/<layer>/ (so an include
# reads the same in-tree and installed), libedifice.a, the CLI, a CMake package
# (find_package(edifice) -> edifice::edifice) and edifice.pc. tests/install checks all of it.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

# Headers only the library's own files (and its tests) include: the pieces of the f32
# normal rule, the interpreter's kernel plumbing, the compiled program and its memory
# plan, and the LLVM code generator (the one header that includes llvm-c).
set(ED_PRIVATE_HEADERS
  runtime/normal_f32.h interp/kernels.h interp/iter.h
  backend/arena.h backend/program.h backend/llvm/lower.h)
foreach(h ${ED_PRIVATE_HEADERS})
  if(NOT EXISTS ${CMAKE_SOURCE_DIR}/${h})
    message(FATAL_ERROR "ED_PRIVATE_HEADERS names ${h}, which does not exist")
  endif()
endforeach()
foreach(layer ${ED_LAYERS})
  file(GLOB_RECURSE headers RELATIVE ${CMAKE_SOURCE_DIR} CONFIGURE_DEPENDS ${layer}/*.h ${layer}/*.def)
  list(REMOVE_ITEM headers ${ED_PRIVATE_HEADERS})
  foreach(h ${headers})
    get_filename_component(dir ${h} DIRECTORY)
    install(FILES ${h} DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/edifice/${dir})
  endforeach()
endforeach()

target_include_directories(edifice PUBLIC $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}/edifice>)
install(TARGETS edifice EXPORT edificeTargets ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(TARGETS edifice_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

set(ED_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/edifice)
install(EXPORT edificeTargets NAMESPACE edifice:: DESTINATION ${ED_CMAKE_DIR})
configure_package_config_file(cmake/edificeConfig.cmake.in
  ${CMAKE_BINARY_DIR}/edificeConfig.cmake INSTALL_DESTINATION ${ED_CMAKE_DIR})
# 0.x: a minor release may break the API.
write_basic_package_version_file(${CMAKE_BINARY_DIR}/edificeConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/edificeConfig.cmake ${CMAKE_BINARY_DIR}/edificeConfigVersion.cmake
        DESTINATION ${ED_CMAKE_DIR})

# The .pc finds its prefix from its own place (${pcfiledir}), so it stays right
# whatever `cmake --install --prefix` says.
file(RELATIVE_PATH ED_PC_PREFIX_FROM_PCFILEDIR
     /prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig /prefix)
string(REGEX REPLACE "/$" "" ED_PC_PREFIX_FROM_PCFILEDIR "${ED_PC_PREFIX_FROM_PCFILEDIR}")
configure_file(cmake/edifice.pc.in ${CMAKE_BINARY_DIR}/edifice.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/edifice.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
