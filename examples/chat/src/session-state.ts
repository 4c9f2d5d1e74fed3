// What the server keeps for each connected client. Add the fields your handlers need.
export interface SessionState {
  [key: string]: unknown
}

export const initialState = (): SessionState => ({})
