import { describe, expect, it } from "vitest";
import { amzDate, presignUrl, uriEncode } from "./sigv4.js";

// The example of "Authenticating Requests: Using Query Parameters (AWS Signature Version 4)" in the
// Amazon S3 API reference: the documented credentials, date and resulting signature.
const AWS_EXAMPLE = {
  accessKeyId: "AKIAIOSFODNN7EXAMPLE",
  secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
  date: new Date("2013-05-24T00:00:00Z"),
  signature: "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404",
};

describe("SigV4 pre-signed URLs", () => {
  it("reproduces the AWS documented example signature", () => {
    const url = presignUrl({
      method: "GET",
      url: new URL("https://examplebucket.s3.amazonaws.com/test.txt"),
      region: "us-east-1",
      credentials: AWS_EXAMPLE,
      date: AWS_EXAMPLE.date,
      expiresSeconds: 86400,
    });
    expect(url).toBe(
      "https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256" +
        "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request" +
        "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host" +
        `&X-Amz-Signature=${AWS_EXAMPLE.signature}`,
    );
  });

  it("signs extra headers, so changing one changes the signature", () => {
    const sign = (contentType: string) =>
      presignUrl({
        method: "PUT",
        url: new URL("http://127.0.0.1:9000/bucket/a_1"),
        region: "us-east-1",
        credentials: AWS_EXAMPLE,
        date: AWS_EXAMPLE.date,
        expiresSeconds: 60,
        headers: { "Content-Type": contentType, "content-length": "5" },
      });
    expect(sign("image/png")).toContain("X-Amz-SignedHeaders=content-length%3Bcontent-type%3Bhost");
    expect(sign("image/png")).not.toBe(sign("image/gif"));
  });

  it("encodes as SigV4 requires", () => {
    expect(uriEncode("a b/c~d*é")).toBe("a%20b%2Fc~d%2A%C3%A9");
    expect(uriEncode("a b/c", true)).toBe("a%20b/c");
    expect(amzDate(new Date("2013-05-24T01:02:03.456Z"))).toBe("20130524T010203Z");
  });
});
