# tests/devices/label/documents.cmake: documents_test, included by
# tests/devices/label/CMakeLists.txt. Checks labels and tickets as a scanner would: PDFs through
# poppler (pdftoppm, pdftotext), ZPL through the offline renderer in tests/tools/zpl-render
# (Node 20; `npm ci --prefix tests/tools/zpl-render` first), barcodes through zbarimg.
add_executable(documents_test ${CMAKE_CURRENT_LIST_DIR}/documents_test.cpp)
target_link_libraries(documents_test PRIVATE pressline_label pressline::zint opencv_core
                                             opencv_imgproc opencv_imgcodecs fmt::fmt
                                             GTest::gtest GTest::gtest_main)
target_compile_definitions(documents_test PRIVATE
  PRESSLINE_ZPL_RENDER_DIR="${PROJECT_SOURCE_DIR}/tests/tools/zpl-render")
pressline_defaults(documents_test)
gtest_discover_tests(documents_test DISCOVERY_TIMEOUT 30
                     TEST_PREFIX "documents_test."
                     PROPERTIES LABELS integration TIMEOUT 120)
