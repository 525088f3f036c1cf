// Colour science of the QA dataset generator: sRGB <-> linear light <-> CIE XYZ (D65) <-> CIELAB
// and CIEDE2000. Written here on purpose, independent of devices/qa, so that the dataset's truth
// does not share a bug with the inspector it checks (tested against Sharma, Wu & Dalal 2005).
// Threading: every function is reentrant.
#pragma once

#include <opencv2/core/mat.hpp>
#include <opencv2/core/matx.hpp>

namespace pressline::qa_dataset {

// sRGB transfer function, one channel: encoded 0..1 <-> linear 0..1 (IEC 61966-2-1).
double srgb_to_linear(double encoded);
double linear_to_srgb(double linear);

// r, g, b 0..255 (sRGB) <-> linear r, g, b 0..1.
cv::Vec3d srgb8_to_linear(const cv::Vec3d& rgb255);
cv::Vec3d linear_to_srgb8(const cv::Vec3d& lin);

// Linear sRGB (r, g, b 0..1) -> CIELAB, D65 white (L 0..100).
cv::Vec3d linear_to_lab(const cv::Vec3d& lin);
cv::Vec3d lab_to_linear(const cv::Vec3d& lab);
inline cv::Vec3d srgb8_to_lab(const cv::Vec3d& rgb255) { return linear_to_lab(srgb8_to_linear(rgb255)); }

// CIEDE2000 colour difference (kL = kC = kH = 1).
double ciede2000(const cv::Vec3d& lab1, const cv::Vec3d& lab2);

// Whole images. `lin` is CV_32FC3 in R, G, B order, linear light 0..1 (values are clamped).
// Returns CV_32FC3 L, a, b.
cv::Mat linear_to_lab(const cv::Mat& lin);
// ΔE00 per pixel of two Lab images (CV_32FC3) -> CV_32F.
cv::Mat ciede2000(const cv::Mat& lab1, const cv::Mat& lab2);

// Tables for the hot paths: sRGB 8-bit -> linear float (256 entries) and linear float -> sRGB
// 8-bit (through a 16-bit index).
const float* srgb8_to_linear_table();
// CV_32FC(n) linear 0..1 (clamped) -> CV_8UC(n) sRGB. Parallel.
cv::Mat linear_to_srgb8(const cv::Mat& lin);
// CV_8UC(n) sRGB -> CV_32FC(n) linear.
cv::Mat srgb8_to_linear(const cv::Mat& srgb);

}  // namespace pressline::qa_dataset
