# devices/label/documents.cmake: the label and ticket documents (documents.hpp), included by
# devices/label/CMakeLists.txt after pressline_label is defined.
# ZPL (font-0 text, FreeType-rasterised text and images as ^GFA, ^BC/^BQ), PDF (libharu with
# embedded TrueType fonts, zint barcodes), PNG decoding (libpng), scaling and dithering (OpenCV).
target_sources(pressline_label PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/src/documents.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/documents_barcode.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/documents_image.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/documents_pdf.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/documents_text.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/documents_zpl.cpp)
target_include_directories(pressline_label PRIVATE ${CMAKE_CURRENT_LIST_DIR}/src)
target_link_libraries(pressline_label
  PRIVATE pressline_devices_common pressline::zint Freetype::Freetype PNG::PNG opencv_core opencv_imgproc
          fmt::fmt)
