// The admission floor: a mutating webhook that does nothing (allowed, no patch), the least any webhook written
// in Node can cost the API server. The benchmark registers it next to ours for the same ServiceAccount CREATEs
// (bench/admission-floor.ts) and reports both as the API server measures them. Plain JavaScript, no
// dependencies: nothing here may cost more than the bare server. Environment: CERT_FILE, KEY_FILE, PORT.
import { readFileSync } from 'node:fs';
import https from 'node:https';

const server = https.createServer(
  {
    cert: readFileSync(process.env.CERT_FILE),
    key: readFileSync(process.env.KEY_FILE),
    minVersion: 'TLSv1.2',
  },
  (req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      let uid = '';
      try {
        uid = JSON.parse(Buffer.concat(chunks).toString('utf8')).request?.uid ?? '';
      } catch {
        res.statusCode = 400;
        res.end();
        return;
      }
      res.setHeader('Content-Type', 'application/json');
      res.end(
        JSON.stringify({
          apiVersion: 'admission.k8s.io/v1',
          kind: 'AdmissionReview',
          response: { uid, allowed: true },
        }),
      );
    });
  },
);
// As ours: the API server keeps its connections open between calls.
server.keepAliveTimeout = 60_000;
server.listen(Number(process.env.PORT), '127.0.0.1', () =>
  console.log(`listening on 127.0.0.1:${process.env.PORT}`),
);
process.on('SIGTERM', () => server.close(() => process.exit(0)));
