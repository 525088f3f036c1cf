# Compiler settings applied to every target of our own code (never to third-party code).
function(pressline_defaults target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Werror -Wshadow -Wnon-virtual-dtor
                                           -Wno-error=deprecated-declarations)
  if(PRESSLINE_SANITIZE)
    # -Wmaybe-uninitialized gives false positives inside libstdc++ (std::regex, std::function)
    # when GCC 12 instruments for ASan; it stays an error in the normal build.
    target_compile_options(${target} PRIVATE -fsanitize=address,undefined -fno-omit-frame-pointer
                                             -fno-sanitize-recover=undefined
                                             -Wno-maybe-uninitialized)
    target_link_options(${target} PRIVATE -fsanitize=address,undefined)
  endif()
endfunction()
