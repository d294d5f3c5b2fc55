# Warnings.cmake - the project's warning set; HOLDMX_WERROR makes them fatal.
function(holdmx_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wshadow
    -Wstrict-prototypes -Wmissing-prototypes -Wpointer-arith -Wformat=2
    -Wno-unused-parameter)
  if(HOLDMX_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
