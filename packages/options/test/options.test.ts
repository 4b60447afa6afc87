// The shared options validator (@scorch/options): unknown keys, null, values outside a set, numbers outside a range.
import { describe, expect, it } from 'vitest';
import { checkBoolean, checkNumber, checkNumberList, checkOneOf, checkOptions, checkString, closestName, editDistance, everyEntry } from '../src/index.js';

describe('checkOptions', () => {
  const known = ['lr', 'beta1', 'beta2', 'eps', 'weightDecay'];

  it('accepts known keys, undefined values and an absent object', () => {
    expect(() => checkOptions('adam', { lr: 1e-3, beta1: 0.9 }, known)).not.toThrow();
    expect(() => checkOptions('adam', { eps: undefined, typo: undefined }, known)).not.toThrow();
    expect(() => checkOptions('adam', undefined, known)).not.toThrow();
  });

  it('rejects an unknown key, naming the closest valid one and listing them all', () => {
    expect(() => checkOptions('adam', { weightdecay: 0.1 }, known)).toThrow(
      "adam: unknown option 'weightdecay' (did you mean 'weightDecay'?); valid options: lr, beta1, beta2, eps, weightDecay",
    );
    expect(() => checkOptions('sampler', { stepsPerlevel: 5 }, ['stepsPerLevel', 'key', 'sigmas'])).toThrow("(did you mean 'stepsPerLevel'?)");
  });

  it('gives no suggestion when nothing is close', () => {
    expect(() => checkOptions('adam', { learningRate: 0.1 }, known)).toThrow("adam: unknown option 'learningRate'; valid options: lr, beta1");
  });

  it('refuses null for a known option, which reached some defaults (through ??) and some checks', () => {
    expect(() => checkOptions('adam', { lr: null }, known)).toThrow(new TypeError('adam: lr is null, which is not a value for it (an option left out, or undefined, takes its default)'));
  });

  it('rejects non-objects', () => {
    expect(() => checkOptions('adam', 3, known)).toThrow('adam: expected an options object, got number');
    expect(() => checkOptions('adam', null, known)).toThrow('got null');
    expect(() => checkOptions('adam', [1], known)).toThrow('got an array');
    // A Map's entries and a class instance's prototype fields were ignored without a word.
    expect(() => checkOptions('zeros', new Map([['dtype', 'int32']]), ['dtype'])).toThrow(new TypeError('zeros: expected a plain options object ({ key: value, ... }), got a Map'));
    class Settings { get lr() { return 0.1; } }
    expect(() => checkOptions('adam', new Settings(), known)).toThrow('adam: expected a plain options object ({ key: value, ... }), got a Settings');
    expect(() => checkOptions('adam', Object.assign(Object.create(null) as object, { lr: 0.1 }), known)).not.toThrow();
  });

  it('accepts null for a nullable key only, and says when a function takes no options', () => {
    expect(() => checkOptions('vmap', { inAxes: null }, ['inAxes', 'outAxes'], ['inAxes'])).not.toThrow();
    expect(() => checkOptions('vmap', { outAxes: null }, ['inAxes', 'outAxes'], ['inAxes'])).toThrow('vmap: outAxes is null');
    expect(() => checkOptions('f', { a: 1 }, [])).toThrow(new TypeError("f: unknown option 'a'; it takes no options"));
  });
});

describe('closestName', () => {
  it('finds case and one-letter slips, not unrelated names', () => {
    expect(closestName('Projection', ['distribution', 'projection'])).toBe('projection');
    expect(closestName('sigmass', ['sigmas', 'key'])).toBe('sigmas');
    expect(closestName('xyz', ['distribution', 'key', 'sigmas'])).toBe(null);
  });

  it('counts a swap of neighbours as one edit, allows two edits in a short name, and a name containing a candidate', () => {
    expect(editDistance('ab', 'ba')).toBe(1);
    expect(editDistance('tdyep', 'dtype')).toBe(2);
    // 'tdyep' (5 letters) is two swaps from 'dtype': within max(2, floor(5 / 3)) = 2.
    expect(closestName('tdyep', ['dtype', 'device', 'shape'])).toBe('dtype');
    expect(closestName('stepsPerLevel', ['steps', 'key'])).toBe('steps');
    // Containment under 3 letters is no hint: 'a' is in 'beta1', '' in everything.
    expect(closestName('a', ['lr', 'beta1'])).toBe(null);
    expect(closestName('', ['lr', 'beta1'])).toBe(null);
    expect(() => checkOptions('adam', { a: 1 }, ['lr', 'beta1'])).toThrow(/^adam: unknown option 'a'; valid options: lr, beta1$/);
  });
});

describe('checkOneOf, checkNumber, checkBoolean and checkString', () => {
  it('names the value, a close allowed value and the set', () => {
    expect(() => checkOneOf('ssm', 'distribution', 'gausian', ['gaussian', 'rademacher'])).toThrow(
      `ssm: unknown distribution "gausian" (did you mean 'gaussian'?); expected one of 'gaussian', 'rademacher'`,
    );
  });

  it('checks finiteness, integrality and ranges', () => {
    expect(() => checkNumber('initWebGPU', 'maxDispatchesPerBatch', -5, { integer: true, min: 1 })).toThrow(
      'initWebGPU: maxDispatchesPerBatch must be an integer >= 1, got -5',
    );
    expect(() => checkNumber('initWebGPU', 'poolLimitBytes', -1, { min: 0 })).toThrow('poolLimitBytes must be a finite number >= 0, got -1');
    expect(() => checkNumber('adam', 'lr', Number.NaN, { min: 0, exclusiveMin: true })).toThrow('lr must be a finite number > 0, got NaN');
    expect(() => checkNumber('adam', 'lr', '0.1', { min: 0 })).toThrow('got "0.1"');
    expect(() => checkNumber('adam', 'lr', 0.1, { min: 0, exclusiveMin: true })).not.toThrow();
    expect(() => checkNumber('adam', 'lr', undefined, { min: 0 })).not.toThrow();
    expect(() => checkNumber('ema', 'decay', 1, { min: 0, max: 1, exclusiveMax: true })).toThrow('decay must be a finite number >= 0 and < 1, got 1');
    // The bounds themselves: an exclusive minimum refuses it, an inclusive one takes it; a fraction is no integer.
    expect(() => checkNumber('adam', 'lr', 0, { min: 0, exclusiveMin: true })).toThrow(new RangeError('adam: lr must be a finite number > 0, got 0'));
    expect(() => checkNumber('adam', 'lr', 0, { min: 0 })).not.toThrow();
    expect(() => checkNumber('f', 'n', 1.5, { integer: true })).toThrow(new RangeError('f: n must be an integer, got 1.5'));
    expect(() => checkNumber('f', 'n', 2, { integer: true })).not.toThrow();
  });

  it('accepts only true, false or undefined for a boolean', () => {
    expect(() => checkBoolean('initWebGPU', 'poisonAllocations', 'yes')).toThrow('initWebGPU: poisonAllocations must be true or false, got "yes"');
    expect(() => checkBoolean('initWebGPU', 'forceCompatibility', 1)).toThrow('forceCompatibility must be true or false, got 1');
    expect(() => checkBoolean('initWebGPU', 'forceCompatibility', null)).toThrow('got null');
    for (const ok of [true, false, undefined]) expect(() => checkBoolean('initWebGPU', 'forceCompatibility', ok)).not.toThrow();
  });

  it('accepts a string, or undefined unless required; names the option and the value otherwise', () => {
    expect(() => checkString('scatterPlot', 'title', 5)).toThrow(new TypeError('scatterPlot: title must be a string, got 5'));
    expect(() => checkString('scatterPlot', 'title', null)).toThrow('scatterPlot: title must be a string, got null');
    expect(() => checkString('htmlReport', 'title', undefined, { required: true })).toThrow('htmlReport: title must be a string, got undefined');
    expect(() => checkString('scatterPlot', 'color', '', { nonEmpty: true })).toThrow('scatterPlot: color must be a non-empty string, got ""');
    for (const ok of ['', 'x', undefined]) expect(() => checkString('scatterPlot', 'title', ok)).not.toThrow();
    expect(() => checkString('scatterPlot', 'color', '#fff', { nonEmpty: true, required: true })).not.toThrow();
  });
});

describe('everyEntry and checkNumberList', () => {
  it('see a hole as undefined, where every() and forEach() skip it', () => {
    const holed = [1, 2, 3];
    delete holed[1];
    expect(holed.every((v) => v > 0)).toBe(true);
    expect(everyEntry(holed, (v) => v !== undefined && v > 0)).toBe(false);
    expect(everyEntry([1, 2, 3], (v, i) => v === i + 1)).toBe(true);
    expect(() => checkNumberList('mlpScore', 'hidden', holed, { integer: true, min: 1 })).toThrow(new RangeError('mlpScore: hidden[1] must be an integer >= 1, got undefined'));
    expect(() => checkNumberList('mlpScore', 'hidden', [4, 0], { integer: true, min: 1 })).toThrow('mlpScore: hidden[1] must be an integer >= 1, got 0');
    expect(() => checkNumberList('mlpScore', 'hidden', [4, 4], { integer: true, min: 1 })).not.toThrow();
  });
});
