// Users and passwords: the right ones connect, a wrong password and no credentials at all are
// refused with the authorization error. Needs --user and --pass (or NATS_USER, NATS_PASS).
import { checkEqual, connectTo, expectError, kCallTimeoutMs, run, within } from "./lib.mjs";

run("auth", 20000, async (t, opts) => {
  if (opts.user === undefined || opts.pass === undefined) {
    throw new Error("the auth scenario needs --user and --pass of a user the server knows");
  }
  const good = await connectTo(opts);
  await within(good.flush(), kCallTimeoutMs, "a round trip as the user");
  t.step("good_credentials", { connected: true });
  await good.close();

  const wrong = await expectError(connectTo({ ...opts, pass: `${opts.pass}-wrong` }), "connect with a wrong password");
  t.step("wrong_password", { code: wrong.code });
  checkEqual(wrong.code, "AUTHORIZATION_VIOLATION", "the error of a wrong password");

  const unknown = await expectError(connectTo({ ...opts, user: `${opts.user}-nobody` }), "connect as an unknown user");
  t.step("unknown_user", { code: unknown.code });
  checkEqual(unknown.code, "AUTHORIZATION_VIOLATION", "the error of an unknown user");

  const anonymous = await expectError(connectTo({ ...opts, user: undefined, pass: undefined }), "connect without credentials");
  t.step("no_credentials", { code: anonymous.code });
  checkEqual(anonymous.code, "AUTHORIZATION_VIOLATION", "the error of a connection without credentials");
});
