import { ConnectError, type Code } from "@connectrpc/connect";
import { expect } from "vitest";
import { ErrorDetailSchema, type ErrorReason } from "../../gen/chat/v1/errors_pb.js";

/** Asserts that the promise fails with this Connect code and this chat.v1 reason. */
export async function expectChatError(promise: Promise<unknown>, code: Code, reason: ErrorReason): Promise<ConnectError> {
  const error = await promise.then(
    () => undefined,
    (failure: unknown) => failure,
  );
  expect(error, "expected the call to fail").toBeInstanceOf(ConnectError);
  const connectError = error as ConnectError;
  expect({ code: connectError.code, reason: connectError.findDetails(ErrorDetailSchema)[0]?.reason, message: connectError.rawMessage }).toMatchObject({
    code,
    reason,
  });
  return connectError;
}
