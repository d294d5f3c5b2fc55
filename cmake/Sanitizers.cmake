# Sanitizers.cmake - HOLDMX_ASAN / HOLDMX_UBSAN for the whole build.
# UBSan runs without recovery so that any finding fails the test that hit it.
set(_san "")
if(HOLDMX_ASAN)
  list(APPEND _san address)
endif()
if(HOLDMX_UBSAN)
  list(APPEND _san undefined)
endif()
if(_san)
  list(JOIN _san "," _sanlist)
  add_compile_options(-fsanitize=${_sanlist} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${_sanlist})
endif()
