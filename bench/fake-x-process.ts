import { startFakeXApi } from '../test/fakes/x-api.js';

/**
 * The X API fake in its own process (so the benchmark's client and server do
 * not share a thread): `n` posts with ids 1900000000000000000 + i. Speaks
 * over IPC: sends {url, certFile, ca} when ready, answers {requests} to 'count'.
 */
const n = Number(process.argv[2] ?? 2000);
const fake = await startFakeXApi({ credentials: { appKey: 'bk', appSecret: 'bs', accessToken: 'bt', accessSecret: 'bx' }, followers: 4321 });
for (let i = 0; i < n; i++) {
  const id = String(1_900_000_000_000_000_000n + BigInt(i));
  fake.tweets.push({ id, text: `post ${i}`, mediaIds: [], metrics: { like_count: i % 17, retweet_count: i % 5, impression_count: 100 + i }, nonPublic: { impression_count: 120 + i, url_link_clicks: i % 3, user_profile_clicks: 0 } });
}
process.on('message', (msg) => {
  if (msg === 'count') process.send?.({ requests: fake.requests.length, paths: fake.requests.map((r) => r.path) });
  if (msg === 'stop') void fake.close().then(() => process.exit(0));
});
process.send?.({ url: fake.url, certFile: fake.certFile, ca: fake.ca });
