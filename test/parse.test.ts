import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseClassScores, parseDetections, ResponseError, type ResponseFormat, selectDetections } from '../src/predictor/parse.js';
import { TORCHSERVE_DETECTION_FIELDS } from '../src/predictor/recognise.js';

const bytes = (text: string): Uint8Array => Buffer.from(text);
const labels = ['cat', 'dog', 'horse'];
const json = (probability?: string): ResponseFormat => ({ acceptType: 'application/json', probability });

describe('response parsing: classification', () => {
  it('reads the seed payload {"prediction":[0.1,0.6,0.3]} with probability "prediction"', () => {
    const scores = parseClassScores(bytes('{"prediction":[0.1,0.6,0.3]}'), json('prediction'), labels);
    assert.deepEqual(scores, [
      { label: 'cat', index: 0, score: 0.1 },
      { label: 'dog', index: 1, score: 0.6 },
      { label: 'horse', index: 2, score: 0.3 },
    ]);
  });

  it('reads a bare list with "[*]" and with no probability expression', () => {
    for (const format of [json('[*]'), json(undefined)]) {
      assert.deepEqual(parseClassScores(bytes('[0.1,0.6,0.3]'), format, labels).map((s) => s.score), [0.1, 0.6, 0.3]);
    }
  });

  it('reads JSON Lines (first line) and CSV (all columns, or a column holding a list)', () => {
    const lines = parseClassScores(bytes('{"p":[0.2,0.5,0.3]}\n'), { acceptType: 'application/jsonlines', probability: 'p' }, labels);
    assert.deepEqual(lines.map((s) => s.score), [0.2, 0.5, 0.3]);
    const csv = parseClassScores(bytes('0.2,0.5,0.3\n'), { acceptType: 'text/csv' }, labels);
    assert.deepEqual(csv.map((s) => s.score), [0.2, 0.5, 0.3]);
    const column = parseClassScores(bytes('dog,"[0.2, 0.5, 0.3]"\n'), { acceptType: 'text/csv', probability: 1 }, labels);
    assert.deepEqual(column.map((s) => s.score), [0.2, 0.5, 0.3]);
  });

  it('reorders scores to label_headers when the model names its labels', () => {
    const body = bytes('{"labels":["horse","cat","dog"],"probabilities":[0.3,0.1,0.6]}');
    const scores = parseClassScores(body, { acceptType: 'application/json', probability: 'probabilities', label: 'labels' }, labels);
    assert.deepEqual(scores.map((s) => [s.label, s.score]), [['cat', 0.1], ['dog', 0.6], ['horse', 0.3]]);
  });

  it('explains a misfit: expression, accept type and the start of the body', () => {
    const check = (body: string, format: ResponseFormat, pattern: RegExp): void => {
      assert.throws(() => parseClassScores(bytes(body), format, labels), (e: unknown) => e instanceof ResponseError && pattern.test(e.message));
    };
    check('{"prediction":[0.1,0.6]}', json('prediction'), /got 2 scores but label_headers has 3 labels \(probability expression "prediction", accept type application\/json; body starts: "\{\\"prediction\\":\[0.1,0.6\]\}"\)/);
    check('{"scores":[0.1,0.6,0.3]}', json('prediction'), /expected a list of 3 scores, got nothing/);
    check('<html>oops</html>', json('prediction'), /not valid JSON.*body starts: "<html>oops<\/html>"/);
    check('', json('prediction'), /the response is empty/);
    // Python's json.dumps writes bare NaN / Infinity for non-finite floats; the message says so.
    check('{"prediction": [0.1, NaN, 0.3]}', json('prediction'), /holds NaN or Infinity.*Python's json.dumps.*not a finite number \(probability expression "prediction"/);
    check('{"prediction": [0.1, 0.3, -Infinity]}', json('prediction'), /holds NaN or Infinity/);
    check('{"prediction": [0.1, 0.6, 0.3], "note": "NaN"} x', json('prediction'), /not valid JSON/);
    check('{"prediction":[0.1,"x",0.3]}', json('prediction'), /not all finite numbers/);
    const long = `{"prediction":"${'x'.repeat(500)}"}`;
    assert.throws(() => parseClassScores(bytes(long), json('prediction'), labels), (e: unknown) => {
      const quoted = /body starts: (".*")\)$/.exec((e as Error).message)?.[1] ?? '""';
      return (JSON.parse(quoted) as string).length === 200;
    });
  });
});

describe('response parsing: object detection', () => {
  const size = { labelHeaders: labels, width: 200, height: 100 };
  const rows = [
    [1.0, 0.9, 0.1, 0.2, 0.5, 0.8],
    [2, 0.3, 0.0, 0.0, 0.2, 0.2],
    [0.0, 0.7, 0.5, 0.5, 0.9, 0.9],
  ];

  it('reads rows with and without the "prediction" wrapper; class index may be a float', () => {
    const wrapped = parseDetections(bytes(JSON.stringify({ prediction: rows })), json('prediction'), { ...size, detectionFormat: 'clarify' });
    const bare = parseDetections(bytes(JSON.stringify(rows)), json(undefined), { ...size, detectionFormat: 'clarify' });
    assert.deepEqual(wrapped, bare);
    assert.deepEqual(wrapped[0], { classIndex: 1, label: 'dog', score: 0.9, box: { x0: 0.1, y0: 0.2, x1: 0.5, y1: 0.8 } });
    assert.equal(wrapped.length, 3);
  });

  it('keeps detections at or above the threshold, best first, at most max_objects', () => {
    const all = parseDetections(bytes(JSON.stringify(rows)), json(undefined), { ...size, detectionFormat: 'clarify' });
    assert.deepEqual(selectDetections(all, 0.5, 3).map((d) => d.label), ['dog', 'cat']);
    assert.deepEqual(selectDetections(all, 0.3, 3).map((d) => d.label), ['dog', 'cat', 'horse']);
    assert.deepEqual(selectDetections(all, 0.0, 1).map((d) => d.label), ['dog']);
  });

  it('reads the Mask R-CNN labels/boxes answer (pixel boxes, "<class> <score>%")', () => {
    const body = bytes('{"labels": ["horse 100%", "person 87.5%"], "boxes": [[20, 10, 120, 90], [0, 0, 50, 50]]}');
    const objects = parseDetections(body, json(undefined), { labelHeaders: ['person', 'horse'], width: 200, height: 100, detectionFormat: 'mask_rcnn' });
    assert.deepEqual(objects, [
      { classIndex: 1, label: 'horse', score: 1, box: { x0: 0.1, y0: 0.1, x1: 0.6, y1: 0.9 } },
      { classIndex: 0, label: 'person', score: 0.875, box: { x0: 0, y0: 0, x1: 0.25, y1: 0.5 } },
    ]);
  });

  it('rejects rows that are not detections, naming the problem', () => {
    const opts = { ...size, detectionFormat: 'clarify' as const };
    assert.throws(() => parseDetections(bytes('[[1, 0.9, 0.1]]'), json(undefined), opts), /row 0 is not \[class, score, x0, y0, x1, y1\]/);
    assert.throws(() => parseDetections(bytes('[[7, 0.9, 0, 0, 1, 1]]'), json(undefined), opts), /class 7, not an index into label_headers \(0..2\)/);
    assert.throws(() => parseDetections(bytes('[[1.5, 0.9, 0, 0, 1, 1]]'), json(undefined), opts), /class 1.5/);
    assert.throws(() => parseDetections(bytes('{"prediction": 3}'), json('prediction'), opts), /expected a list of detection rows/);
    const maskOpts = { ...size, detectionFormat: 'mask_rcnn' as const };
    assert.throws(() => parseDetections(bytes('{"labels": ["horse"], "boxes": [[0,0,1,1]]}'), json(undefined), maskOpts), /"horse" is not "<class> <score>%"/);
  });
});

describe('response parsing: JumpStart, Hugging Face and TorchServe shapes', () => {
  const size = { width: 200, height: 100, labelHeaders: ['person', 'dog', 'car'] };

  it('JumpStart classification: verbose (labels beside probabilities) and plain', () => {
    const verbose = bytes('{"probabilities": [0.2, 0.1, 0.7], "labels": ["horse", "dog", "cat"], "predicted_label": "cat"}');
    const scores = parseClassScores(verbose, { acceptType: 'application/json', probability: 'probabilities', label: 'labels' }, labels);
    assert.deepEqual(scores.map((s) => [s.label, s.score]), [['cat', 0.7], ['dog', 0.1], ['horse', 0.2]]);
    const plain = parseClassScores(bytes('{"probabilities": [0.2, 0.1, 0.7]}'), json('probabilities'), labels);
    assert.deepEqual(plain.map((s) => s.score), [0.2, 0.1, 0.7]);
  });

  it('Hugging Face label/score records: matched by label; a label not returned fails unless missing_label_score says what it is', () => {
    const topTwo = bytes('[{"label": "dog", "score": 0.8}, {"label": "cat", "score": 0.15}]');
    const format: ResponseFormat = { acceptType: 'application/json', probability: '[*].score', label: '[*].label' };
    assert.throws(() => parseClassScores(topTwo, format, labels), /label_headers entry "horse" is not among the model's labels.*missing_label_score/);
    const zero = parseClassScores(topTwo, { ...format, missingLabelScore: 0 }, labels);
    assert.deepEqual(zero.map((s) => [s.label, s.index, s.score]), [['cat', 0, 0.15], ['dog', 1, 0.8], ['horse', 2, 0]]);
    // A label the model returns that label_headers does not list is ignored, never shifted in.
    const extra = parseClassScores(bytes('[{"label": "zebra", "score": 0.5}, {"label": "dog", "score": 0.3}]'), { ...format, missingLabelScore: 0 }, labels);
    assert.deepEqual(extra.map((s) => s.score), [0, 0.3, 0]);
  });

  it('TorchServe label → score objects: values(@) and keys(@) read them, matched by label (class ids as labels too)', () => {
    const format: ResponseFormat = { acceptType: 'application/json', probability: 'values(@)', label: 'keys(@)', missingLabelScore: 0 };
    const top = parseClassScores(bytes('{"dog": 0.8, "cat": 0.15}'), format, labels);
    assert.deepEqual(top.map((s) => [s.label, s.score]), [['cat', 0.15], ['dog', 0.8], ['horse', 0]]);
    // Without index_to_name.json the keys are class ids; JavaScript orders such keys numerically, values(@) alike.
    const ids = parseClassScores(bytes('{"2": 0.7, "0": 0.2, "1": 0.1}'), format, ['0', '1', '2']);
    assert.deepEqual(ids.map((s) => s.score), [0.2, 0.1, 0.7]);
  });

  it('JumpStart detection: normalised boxes, float class indices into label_headers, or into class_names (verbose)', () => {
    const answer = '{"normalized_boxes": [[0.1, 0.2, 0.5, 0.6], [0.5, 0.5, 0.9, 0.9]], "classes": [2.0, 0.0], "scores": [0.9, 0.6]';
    const plain = parseDetections(bytes(`${answer}}`), json(undefined), {
      ...size,
      detectionFormat: 'clarify',
      detectionFields: { boxes: 'normalized_boxes', scores: 'scores', classes: 'classes', coordinates: 'normalized' },
    });
    assert.deepEqual(plain, [
      { classIndex: 2, label: 'car', score: 0.9, box: { x0: 0.1, y0: 0.2, x1: 0.5, y1: 0.6 } },
      { classIndex: 0, label: 'person', score: 0.6, box: { x0: 0.5, y0: 0.5, x1: 0.9, y1: 0.9 } },
    ]);
    const verbose = parseDetections(bytes(`${answer}, "labels": ["person", "bicycle", "dog"]}`), json(undefined), {
      ...size,
      detectionFormat: 'clarify',
      detectionFields: { boxes: 'normalized_boxes', scores: 'scores', classes: 'classes', class_names: 'labels', coordinates: 'normalized' },
    });
    assert.deepEqual(verbose.map((d) => [d.label, d.classIndex]), [['dog', 1], ['person', 0]]);
  });

  it('Hugging Face detection: pixel boxes in records, labels by name', () => {
    const answer = bytes('[{"score": 0.99, "label": "dog", "box": {"xmin": 20, "ymin": 10, "xmax": 100, "ymax": 90}}, {"score": 0.4, "label": "kite", "box": {"xmin": 0, "ymin": 0, "xmax": 50, "ymax": 50}}]');
    const found = parseDetections(answer, json(undefined), {
      ...size,
      detectionFormat: 'clarify',
      detectionFields: { boxes: '[*].[box.xmin, box.ymin, box.xmax, box.ymax]', scores: '[*].score', labels: '[*].label', coordinates: 'pixels' },
    });
    assert.deepEqual(found, [
      { classIndex: 1, label: 'dog', score: 0.99, box: { x0: 0.1, y0: 0.1, x1: 0.5, y1: 0.9 } },
      { classIndex: -1, label: 'kite', score: 0.4, box: { x0: 0, y0: 0, x1: 0.25, y1: 0.5 } },
    ]);
  });

  it('the Mask R-CNN shape is the same mapping (labels carrying scores) and reads identically', () => {
    const answer = bytes('{"labels": ["dog 97.5%", "car 40%"], "boxes": [[20, 10, 100, 90], [0, 0, 50, 50]]}');
    const preset = parseDetections(answer, json(undefined), { ...size, detectionFormat: 'mask_rcnn' });
    const mapped = parseDetections(answer, json(undefined), { ...size, detectionFormat: 'clarify', detectionFields: { boxes: 'boxes', labels: 'labels', coordinates: 'pixels' } });
    assert.deepEqual(preset, mapped);
    assert.deepEqual(preset.map((d) => [d.label, d.classIndex, d.score]), [['dog', 1, 0.975], ['car', 2, 0.4]]);
  });

  it('mismatched field lengths and non-list fields are clear errors', () => {
    const fields = { boxes: 'b', scores: 's', classes: 'c', coordinates: 'normalized' as const };
    assert.throws(() => parseDetections(bytes('{"b": [[0,0,1,1]], "s": [0.5, 0.4], "c": [0]}'), json(undefined), { ...size, detectionFormat: 'clarify', detectionFields: fields }), /1 boxes but 2 scores/);
    assert.throws(() => parseDetections(bytes('{"b": 3, "s": [], "c": []}'), json(undefined), { ...size, detectionFormat: 'clarify', detectionFields: fields }), /detection field boxes "b" is not a list/);
    assert.throws(() => parseDetections(bytes('{"b": [[0,0,1,1]], "s": [0.5], "c": [7]}'), json(undefined), { ...size, detectionFormat: 'clarify', detectionFields: fields }), /class 0 is 7, not an index into label_headers/);
  });
});

describe('response parsing: answers shaped as a batch of one', () => {
  const size = { width: 100, height: 100, labelHeaders: ['dog', 'elephant', 'zebra', 'bear'], detectionFormat: 'clarify' as const };
  const lines = (_probability: string): ResponseFormat => ({ acceptType: 'application/jsonlines' });

  it('classification: [[0.1, 0.6, 0.3]] is one image\'s scores, in JSON and JSON Lines', () => {
    assert.deepEqual(parseClassScores(bytes('[[0.1, 0.6, 0.3]]'), json(undefined), labels).map((s) => s.score), [0.1, 0.6, 0.3]);
    assert.deepEqual(parseClassScores(bytes('{"prediction": [[0.1, 0.6, 0.3]]}'), json('prediction'), labels).map((s) => s.score), [0.1, 0.6, 0.3]);
    assert.deepEqual(parseClassScores(bytes('[[0.1, 0.6, 0.3]]\n'), lines(''), labels).map((s) => s.score), [0.1, 0.6, 0.3]);
  });

  it('detection: [[rows…]] is one image\'s rows; [[row]] stays one row; [[]] is no detection', () => {
    const rows = '[[0.0, 0.97, 0.1, 0.2, 0.5, 0.6], [3.0, 0.9, 0.5, 0.5, 0.9, 0.9]]';
    const batched = parseDetections(bytes(`[${rows}]`), json(undefined), size);
    assert.deepEqual(batched.map((d) => [d.label, d.score]), [['dog', 0.97], ['bear', 0.9]]);
    assert.deepEqual(parseDetections(bytes(rows), json(undefined), size), batched, 'the unbatched answer reads the same');
    assert.deepEqual(parseDetections(bytes(`[${rows}]\n`), lines(''), size), batched, 'JSON Lines');
    const single = parseDetections(bytes('[[0.0, 0.97, 0.1, 0.2, 0.5, 0.6]]'), json(undefined), size);
    assert.equal(single.length, 1, 'one row, not a batch');
    assert.deepEqual(parseDetections(bytes('[[]]'), json(undefined), size), []);
    assert.deepEqual(parseDetections(bytes('[]'), json(undefined), size), []);
  });
});

describe('response parsing: boxes that cannot be matched', () => {
  it('an inverted or empty box is a clear error, in rows and in field mappings', () => {
    const size = { width: 100, height: 100, labelHeaders: ['cat'], detectionFormat: 'clarify' as const };
    assert.throws(() => parseDetections(bytes('[[0, 0.9, 0.5, 0.2, 0.1, 0.6]]'), json(undefined), size), /detection 0 has an inverted box \[0\.5, 0\.2, 0\.1, 0\.6\]/);
    assert.throws(() => parseDetections(bytes('[[0, 0.9, 0.2, 0.2, 0.2, 0.6]]'), json(undefined), size), /detection 0 has an empty box/);
    const fields = { boxes: 'b', scores: 's', labels: 'l', coordinates: 'pixels' as const };
    assert.throws(() => parseDetections(bytes('{"b": [[10, 10, 5, 50]], "s": [0.9], "l": ["cat"]}'), json(undefined), { ...size, detectionFields: fields }), /inverted box/);
  });
});

describe('response parsing: an expression that finds nothing says what would read the answer', () => {
  const size = { labelHeaders: labels, width: 200, height: 100, detectionFormat: 'clarify' as const };
  const message = (run: () => unknown): string => {
    try {
      run();
    } catch (error) {
      assert.ok(error instanceof ResponseError, String(error));
      return error.message;
    }
    assert.fail('the answer was read');
  };

  it('a mistyped key: the key that holds the scores or the rows', () => {
    assert.match(
      message(() => parseClassScores(bytes('{"prediction":[0.1,0.6,0.3]}'), json('predictions'), labels)),
      /^expected a list of 3 scores, got nothing; the answer holds scores under "prediction", which "predictor\.probability": "prediction" would read \(probability expression "predictions", accept type application\/json; body starts: /,
    );
    assert.match(
      message(() => parseDetections(bytes('{"prediction": [[0, 0.9, 0.1, 0.1, 0.5, 0.5]]}'), json('predictions'), size)),
      /^expected a list of detection rows \[class, score, x0, y0, x1, y1\]; the answer holds Clarify detection rows under "prediction", which "predictor\.probability": "prediction" would read \(/,
    );
  });

  it('a model family’s shape: its config lines, the ones already set left out', () => {
    const verbose = bytes('{"probabilities": [0.2, 0.1, 0.7], "labels": ["horse", "dog", "cat"]}');
    assert.match(message(() => parseClassScores(verbose, json('prediction'), labels)), /; the answer holds JumpStart verbose classification, which "predictor\.probability": "probabilities" and "predictor\.label": "labels" would read \(/);
    const jumpStart = bytes('{"normalized_boxes": [[0.1, 0.1, 0.5, 0.5]], "classes": [1], "scores": [0.9]}');
    assert.match(message(() => parseDetections(jumpStart, json('prediction'), size)), /; the answer holds JumpStart detection, which "clarify_images\.detection_fields": \{"boxes":"normalized_boxes",.*\} would read \(/);
  });

  it('TensorFlow Serving\'s batch of one and TorchServe\'s label → score object get their lines', () => {
    assert.match(message(() => parseClassScores(bytes('{"predictions": [[0.1, 0.6, 0.3]]}'), json('prediction'), labels)), /; the answer holds a batch of one list of scores under "predictions" \(TensorFlow Serving\), which "predictor\.probability": "predictions" would read \(/);
    assert.deepEqual(parseClassScores(bytes('{"predictions": [[0.1, 0.6, 0.3]]}'), json('predictions'), labels).map((s) => s.score), [0.1, 0.6, 0.3]);
    assert.match(
      message(() => parseClassScores(bytes('{"dog": 0.8, "cat": 0.15}'), json(undefined), labels)),
      /^expected a list of 3 scores, got object; the answer holds TorchServe image classification \(.*\), which "predictor\.probability": "values\(@\)" and "predictor\.label": "keys\(@\)" and "clarify_images\.missing_label_score": 0 would read \(/,
    );
  });

  it('six numbers a row: Clarify\'s [class, score, box in 0..1] told apart from Ultralytics YOLO\'s [box in pixels, confidence, class]', () => {
    const yolo = bytes('{"boxes": [[12.5, 30, 96, 90.25, 0.91, 2.0], [0, 4, 20, 18, 0.4, 0.0]]}');
    assert.match(
      message(() => parseDetections(yolo, json('prediction'), size)),
      /; the answer holds Ultralytics YOLO rows \[x0, y0, x1, y1, confidence, class\] in pixels under "boxes", which "clarify_images\.detection_fields": \{"boxes":"boxes\[\*\]\[0:4\]","scores":"boxes\[\*\]\[4\]","classes":"boxes\[\*\]\[5\]","coordinates":"pixels"\} would read \(/,
    );
    // The suggested fields read it: boxes in pixels of the 200 × 100 image, classes into label_headers.
    const read = parseDetections(yolo, json(undefined), { ...size, detectionFields: { boxes: 'boxes[*][0:4]', scores: 'boxes[*][4]', classes: 'boxes[*][5]', coordinates: 'pixels' } });
    assert.deepEqual(read.map((d) => [d.label, d.score, d.box.x0, d.box.y1]), [['horse', 0.91, 12.5 / 200, 90.25 / 100], ['cat', 0.4, 0, 0.18]]);
    assert.match(message(() => parseDetections(bytes('{"detections": [[2, 0.9, 0.1, 0.2, 0.5, 0.6]]}'), json('prediction'), size)), /the answer holds Clarify detection rows under "detections"/);
  });

  it('TorchServe\'s object_detector records: the class is the key beside "score", named or an index, whatever the key order', () => {
    const answer = bytes('[{"horse": [12.5, 30, 96, 90.25], "score": 0.91}, {"score": 0.6, "0": [0, 4, 20, 18]}]');
    assert.match(
      message(() => parseDetections(answer, json('prediction'), size)),
      /; the answer holds TorchServe object detection \(.*\), which "clarify_images\.detection_fields": \{"boxes":"\[\*\]\.values\(@\)\[0\]","scores":"\[\*\]\.score","labels":"\[\*\]\.keys\(@\)\[0\]","coordinates":"pixels"\} would read \(/,
    );
    // The suggested fields read it. An index-like key ("0", a model without index_to_name.json)
    // comes first in a parsed object even where the text puts "score" first.
    const read = parseDetections(answer, json(undefined), { ...size, detectionFields: TORCHSERVE_DETECTION_FIELDS });
    assert.deepEqual(read.map((d) => [d.label, d.classIndex, d.score, d.box.x0, d.box.y1]), [['horse', 2, 0.91, 12.5 / 200, 90.25 / 100], ['0', -1, 0.6, 0, 0.18]]);
  });

  it('no hint where the answer has no shape we know, or is not JSON', () => {
    assert.match(message(() => parseClassScores(bytes('{"result": "cat"}'), json('prediction'), labels)), /^expected a list of 3 scores, got nothing \(probability expression/);
    assert.doesNotMatch(message(() => parseClassScores(bytes('cat,0.9'), { acceptType: 'text/csv', probability: 0 }, labels)), /the answer holds/);
  });
});
