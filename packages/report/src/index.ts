// @scorch/report: report output for score-matching runs: dependency-free SVG charts and a
// self-contained HTML report, built from plain numbers (no tensors), so it works anywhere strings
// do. Its own package because nothing in it needs @scorch/tensor: a page or a script that only
// draws results does not pull in the engine.

export {
  type AttrValue, type Attrs, type AxesOptions, type DocumentOptions, type LegendEntry, type LegendMarker, type Margins,
  type Markup, type NiceAxis, type NiceStep, type PlotArea, type Scale,
  COORD_PRECISION, PALETTE, axes, chartTitle, el, equalAspectDomains, escapeXml, estimateTextWidth, finiteExtent,
  footnote, formatLogTick, formatNumber, formatTicks, fragment, legend, legendWidth, linearScale, logScale, niceAxis,
  niceLogAxis, niceStep, niceTicks, padExtent, paletteColor, plotArea, pointList, raw, svgDocument, text,
} from './svg.js';
export {
  type ArrowNormalization, type AxisLabels, type DensityHeatmapOptions, type Histogram2d, type Histogram2dOptions,
  type LinePlotOptions, type LineSeries, type PlotSize, type PointsInput, type QuiverComparisonOptions,
  type QuiverPlotOptions, type ScatterPlotOptions, type ScatterSeries, type TrajectoryPlotOptions, type VectorField,
  densityHeatmap, gridPoints, binCounts2d, linePlot, quiverComparison, quiverPlot, scatterPlot, sequentialColor,
  sideBySide, trajectoryPlot,
} from './plots.js';
export {
  type HtmlReportOptions, type ReportSection, type ReportTable, type TableCell,
  escapeHtml, formatCell, htmlReport,
} from './html.js';
