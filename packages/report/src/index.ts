// @scorch/report: report output for score-matching runs: SVG charts and a
// self-contained HTML report, built from plain numbers (no tensors), so it works anywhere strings
// do. Its own package because nothing in it needs @scorch/tensor: a page or a script that only
// draws results does not pull in the engine. Its one dependency is @scorch/options (which imports
// nothing): its options are checked as every scorch package's are.

// The public surface is the charts, the grid a score field is evaluated on, and the HTML page. The
// SVG builder underneath (svg.ts) stays internal: a new kind of chart belongs in this package.

export type { AxisLabels, PlotSize, PointsInput } from './chart.js';
/** A count and its noun, for captions and tables ("1 step", "2 steps"). */
export { plural } from './chart.js';
export { type ScatterPlotOptions, type ScatterSeries, scatterPlot } from './scatter.js';
export { type ArrowNormalization, type QuiverComparisonOptions, type VectorField, gridPoints, quiverComparison } from './quiver.js';
export { type LinePlotOptions, type LineSeries, linePlot } from './line.js';
export { type TrajectoryPlotOptions, trajectoryPlot } from './trajectories.js';
export { type HtmlReportOptions, type ReportSection, type ReportTable, type TableCell, htmlReport } from './html.js';
