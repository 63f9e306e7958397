#pragma once
// A small SVG line chart with logarithmic axes, enough for the context-length benchmark's figure
// (no plotting dependency).

#include <algorithm>  // std::min, std::max
#include <cmath>      // std::log10, std::floor, std::ceil, std::pow
#include <cstdio>     // std::snprintf
#include <string>     // std::string
#include <vector>     // std::vector

namespace glrnn::bench {

struct Series {
  std::string label, color;
  std::vector<double> x, y;
  bool dashed = false;
};

struct Panel {
  std::string title, x_label, y_label;
  std::vector<Series> series;
};

namespace detail {
inline std::string fmt(const char* format, double a, double b = 0, double c = 0, double d = 0) {
  char text[256];
  std::snprintf(text, sizeof text, format, a, b, c, d);
  return text;
}

/// "1k", "64k", "1M" for powers of 1024 and 1000-ish tick values.
inline std::string tick_label(double v) {
  if (v >= 1 << 20) return fmt("%gM", v / (1 << 20));
  if (v >= 1 << 10) return fmt("%gk", v / (1 << 10));
  return fmt("%g", v);
}
}  // namespace detail

/// Panels side by side, each 420 x 300 px of plot area, log-log.
inline std::string svg_line_chart(const std::vector<Panel>& panels) {
  const double width = 420, height = 300, left = 70, top = 40, gap = 110, bottom = 110;
  std::string svg = detail::fmt(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%g\" height=\"%g\" font-family=\"sans-serif\" font-size=\"12\">\n"
      "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
      left + panels.size() * (width + gap), top + height + bottom);
  for (std::size_t p = 0; p < panels.size(); ++p) {
    const Panel& panel = panels[p];
    const double x0 = left + static_cast<double>(p) * (width + gap);
    double xmin = 1e300, xmax = 0, ymin = 1e300, ymax = 0;
    for (const Series& s : panel.series)
      for (std::size_t i = 0; i < s.x.size(); ++i) {
        xmin = std::min(xmin, s.x[i]), xmax = std::max(xmax, s.x[i]);
        ymin = std::min(ymin, s.y[i]), ymax = std::max(ymax, s.y[i]);
      }
    const double lx0 = std::log2(xmin), lx1 = std::log2(xmax);
    const double ly0 = std::floor(std::log10(ymin)), ly1 = std::max(ly0 + 1, std::ceil(std::log10(ymax)));
    const auto px = [&](double x) { return x0 + (std::log2(x) - lx0) / std::max(lx1 - lx0, 1e-9) * width; };
    const auto py = [&](double y) { return top + height - (std::log10(y) - ly0) / (ly1 - ly0) * height; };
    svg += detail::fmt("<rect x=\"%g\" y=\"%g\" width=\"%g\" height=\"%g\" fill=\"none\" stroke=\"#444\"/>\n", x0, top, width, height);
    for (double e = ly0; e <= ly1; ++e) {
      const double y = py(std::pow(10.0, e));
      svg += detail::fmt("<line x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\" stroke=\"#ddd\"/>\n", x0, y, x0 + width, y);
      svg += detail::fmt("<text x=\"%g\" y=\"%g\" text-anchor=\"end\">1e%g</text>\n", x0 - 6, y + 4, e);
    }
    for (double x = std::pow(2.0, std::ceil(lx0)); x <= xmax * 1.0001; x *= 4) {
      svg += detail::fmt("<line x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\" stroke=\"#ddd\"/>\n", px(x), top, px(x), top + height);
      svg += "<text x=\"" + detail::fmt("%g", px(x)) + "\" y=\"" + detail::fmt("%g", top + height + 16) +
             "\" text-anchor=\"middle\">" + detail::tick_label(x) + "</text>\n";
    }
    svg += "<text x=\"" + detail::fmt("%g", x0 + width / 2) + "\" y=\"" + detail::fmt("%g", top - 14) +
           "\" text-anchor=\"middle\" font-size=\"14\" font-weight=\"bold\">" + panel.title + "</text>\n";
    svg += "<text x=\"" + detail::fmt("%g", x0 + width / 2) + "\" y=\"" + detail::fmt("%g", top + height + 36) +
           "\" text-anchor=\"middle\">" + panel.x_label + "</text>\n";
    svg += "<text transform=\"translate(" + detail::fmt("%g,%g", x0 - 52, top + height / 2) +
           ") rotate(-90)\" text-anchor=\"middle\">" + panel.y_label + "</text>\n";
    for (std::size_t k = 0; k < panel.series.size(); ++k) {
      const Series& s = panel.series[k];
      std::string points;
      for (std::size_t i = 0; i < s.x.size(); ++i) points += detail::fmt("%g,%g ", px(s.x[i]), py(s.y[i]));
      svg += "<polyline fill=\"none\" stroke-width=\"2.5\" stroke=\"" + s.color + "\"" +
             (s.dashed ? " stroke-dasharray=\"6,4\"" : "") + " points=\"" + points + "\"/>\n";
      for (std::size_t i = 0; i < s.x.size(); ++i)
        svg += detail::fmt("<circle cx=\"%g\" cy=\"%g\" r=\"3\" fill=\"", px(s.x[i]), py(s.y[i])) + s.color + "\"/>\n";
      const double ly = top + height + 56 + 16 * static_cast<double>(k);
      svg += detail::fmt("<line x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\" stroke-width=\"2.5\" stroke=\"", x0, ly - 4, x0 + 24, ly - 4) +
             s.color + "\"" + (s.dashed ? " stroke-dasharray=\"6,4\"" : "") + "/>\n";
      svg += detail::fmt("<text x=\"%g\" y=\"%g\">", x0 + 30, ly) + s.label + "</text>\n";
    }
  }
  return svg + "</svg>\n";
}

}  // namespace glrnn::bench
