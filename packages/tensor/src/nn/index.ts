// Neural-network layers as compositions of the primitives: normalisation, the classification
// loss, convolutions, pooling and upsampling (NCHW, PyTorch's conventions).

export * from './normalization.js';
export * from './conv.js';
