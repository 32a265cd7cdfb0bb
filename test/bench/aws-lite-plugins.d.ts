// The @aws-lite service plugins ship no types of their own (their -types packages only augment the client).
declare module "@aws-lite/s3";
declare module "@aws-lite/sqs";
