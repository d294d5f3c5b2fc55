# Deps.cmake - third-party libraries, all from Debian packages, found through
# pkg-config (LMDB, Cyrus SASL and inih ship no CMake package configuration).
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
pkg_check_modules(LMDB REQUIRED IMPORTED_TARGET lmdb)
pkg_check_modules(LIBEVENT REQUIRED IMPORTED_TARGET libevent_core libevent_extra libevent_openssl)
pkg_check_modules(SASL2 REQUIRED IMPORTED_TARGET libsasl2)
pkg_check_modules(CARES REQUIRED IMPORTED_TARGET libcares)
pkg_check_modules(OPENSSL REQUIRED IMPORTED_TARGET openssl)
pkg_check_modules(INIH REQUIRED IMPORTED_TARGET inih)
if(HOLDMX_BUILD_TESTS)
  pkg_check_modules(CMOCKA REQUIRED IMPORTED_TARGET cmocka)
endif()
