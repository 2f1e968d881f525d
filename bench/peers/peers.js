// The peers' own runtimes (TensorFlow.js, WebAssembly backend) on the inputs in a file, for comparison with
// their ONNX conversions. usage: node peers.js <face-api model dir> <human emotion.json> <faceapi.bin> <human.bin> <count> <out.json>
const fs = require('fs');
const path = require('path');
const [faceApiDir, humanJson, faceApiBin, humanBin, countArg, out] = process.argv.slice(2);
const count = parseInt(countArg, 10);
(async () => {
  const faceapi = require('@vladmandic/face-api/dist/face-api.node-wasm.js');
  const tf = faceapi.tf;
  await tf.setBackend('wasm');
  await tf.ready();
  await faceapi.nets.faceExpressionNet.loadFromDisk(faceApiDir);
  const faceInput = new Float32Array(fs.readFileSync(faceApiBin).buffer.slice(0));
  const faceApi = [];
  for (let i = 0; i < count; i++) {
    const t = tf.tensor4d(faceInput.subarray(i * 112 * 112 * 3, (i + 1) * 112 * 112 * 3), [1, 112, 112, 3]);
    const p = faceapi.nets.faceExpressionNet.forwardInput(await faceapi.toNetInput(t));
    faceApi.push(Array.from(p.dataSync()));
    t.dispose(); p.dispose();
  }
  const modelJson = JSON.parse(fs.readFileSync(humanJson, 'utf8'));
  const weightData = Buffer.concat(modelJson.weightsManifest.flatMap((g) => g.paths.map((p) => fs.readFileSync(path.join(path.dirname(humanJson), p)))));
  const model = await tf.loadGraphModel({
    load: async () => ({ modelTopology: modelJson.modelTopology, weightSpecs: modelJson.weightsManifest.flatMap((g) => g.weights), weightData: weightData.buffer.slice(weightData.byteOffset, weightData.byteOffset + weightData.byteLength), format: modelJson.format }),
  });
  const humanInput = new Float32Array(fs.readFileSync(humanBin).buffer.slice(0));
  const human = [];
  for (let i = 0; i < count; i++) {
    const t = tf.tensor4d(humanInput.subarray(i * 64 * 64, (i + 1) * 64 * 64), [1, 64, 64, 1]);
    const p = model.execute(t);
    human.push(Array.from(p.dataSync()));
    t.dispose(); p.dispose();
  }
  fs.writeFileSync(out, JSON.stringify({ faceApi, human, backend: tf.getBackend() }));
})().catch((e) => { console.error(e); process.exit(1); });
